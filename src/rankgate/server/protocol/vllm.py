"""vLLM's score API: ``POST /score`` with ``text_1`` / ``text_2``.

``text_1`` is one query or a list; ``text_2`` one document or a list. One query is paired with
every document; two lists of equal length are paired element-wise, as vLLM does. Requests are
strict (unknown fields give 422), except for vLLM's own fields that do not change a score here.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ModelCard", "ModelList", "ScoreData", "ScoreRequest", "ScoreResponse", "ScoreUsage"]


class ScoreRequest(BaseModel):
    """vLLM ``POST /score``."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="Accepted and echoed.")
    text_1: str | list[str] = Field(description="The query, or one query per pair.")
    text_2: str | list[str] = Field(description="The document, or the documents.")
    use_activation: bool | None = Field(
        None,
        description="Sigmoid on the logits, or the model's calibration when it has one "
        "(default true); false gives raw logits.",
    )
    activation: bool | None = Field(None, description="Older name of use_activation.")
    priority: int | None = Field(None, description="Accepted for compatibility; ignored.")
    user: str | None = Field(None, description="Accepted for compatibility; ignored.")
    instruction: str | None = Field(
        None,
        description="What relevance means, for decoder rerankers such as Qwen3-Reranker (as "
        "vLLM and SGLang accept it; the model's default when absent); a cross-encoder answers "
        "422.",
    )

    def pairs(self) -> tuple[list[str], list[str]]:
        """Queries and documents, one of each per pair.

        Raises:
            ValueError: two lists of different lengths (more than one query).
        """
        queries = [self.text_1] if isinstance(self.text_1, str) else list(self.text_1)
        docs = [self.text_2] if isinstance(self.text_2, str) else list(self.text_2)
        if len(queries) == 1:
            queries = queries * len(docs)
        elif len(queries) != len(docs):
            raise ValueError(
                f"text_1 has {len(queries)} items and text_2 {len(docs)}; give one text_1 or "
                "lists of the same length"
            )
        return queries, docs

    @property
    def normalize(self) -> bool:
        chosen = self.use_activation if self.use_activation is not None else self.activation
        return True if chosen is None else chosen


class ScoreData(BaseModel):
    index: int
    object: str = "score"
    score: float


class ScoreUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int
    completion_tokens: int = 0


class ScoreResponse(BaseModel):
    """Scores in the order of the pairs (not sorted)."""

    id: str
    object: str = "list"
    created: int
    model: str
    data: list[ScoreData]
    usage: ScoreUsage


class ModelCard(BaseModel):
    """One served model in ``GET /v1/models`` (OpenAI's and vLLM's shape)."""

    id: str
    object: str = "model"
    created: int
    owned_by: str = "rankgate"
    root: str


class ModelList(BaseModel):
    """``GET /v1/models``."""

    object: str = "list"
    data: list[ModelCard]
