"""What Xinference clients ask before they rerank: ``GET /v1/cluster/auth``, ``/v1/models/{uid}``.

xinference-client (and Dify's Xinference provider, which validates its credentials with it) first
asks ``/v1/cluster/auth``, without a key, whether the server wants one; then it reads the model's
``model_type`` from ``/v1/models/{uid}`` and, for ``"rerank"``, posts to ``/v1/rerank`` in the
Cohere v1 shape.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from rankgate.server.protocol.vllm import ModelCard

__all__ = ["ClusterAuth", "ModelDetail"]


class ModelDetail(ModelCard):
    """``GET /v1/models/{name}``: OpenAI's model card, and what xinference-client reads to
    treat it as a reranker (``model_type``), so that Dify's Xinference provider can be set up."""

    model_type: str = "rerank"
    model_name: str
    model_ability: list[str] = Field(default_factory=list)
    max_tokens: int
    context_length: int


class ClusterAuth(BaseModel):
    """``GET /v1/cluster/auth`` (Xinference): whether requests need an API key."""

    auth: bool
