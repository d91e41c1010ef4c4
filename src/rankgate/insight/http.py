"""HTTP routes for explanations, ranking health and demo scenarios, and the playground page.

The server includes :func:`insight_router` and calls :func:`mount_playground`; nothing here
builds an app or loads a model. Explanations are scored through the engine's service (its queue,
limits, deadline and metrics, at low priority), like every other scoring route. Domain errors
(``InputError``...) propagate to the server's one error table, so these routes answer in the
same shapes as every other route.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, Field

from rankgate.engine.service import RerankService, Timings
from rankgate.insight.catalog import load_scenarios
from rankgate.insight.monitor import RankingHealth

__all__ = ["ExplainRequest", "insight_router", "mount_playground"]

_ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}


class ExplainRequest(BaseModel):
    """``POST /v1/explain``: which parts of ``document`` moved its score for ``query``."""

    query: str = Field(..., description="The question.")
    document: str = Field(..., description="The document text to explain.")
    granularity: Literal["sentence", "word"] = Field(
        "sentence", description="Occlude sentences (default) or words (CJK: characters)."
    )
    instruction: str | None = Field(
        None, description="For decoder rerankers: the instruction the scores are read under."
    )
    model: str | None = Field(
        None, description="Which served model explains (with several); default: the first."
    )


class ExplainSegment(BaseModel):
    index: int
    start: int
    end: int
    text: str
    contribution: float = Field(..., description="Logit with the segment minus without it.")


class ExplainResponse(BaseModel):
    granularity: Literal["sentence", "word"]
    score: float = Field(..., description="Raw logit of the whole document.")
    normalized_score: float = Field(..., description="Sigmoid of the logit, in [0, 1].")
    segments: list[ExplainSegment]


def insight_router(
    get_service: Callable[[str | None], RerankService],
    health: RankingHealth,
    *,
    responses: dict[int | str, dict[str, Any]] | None = None,
) -> APIRouter:
    """Routes ``POST /v1/explain``, ``GET /v1/health/ranking`` and ``GET /v1/demo/scenarios``.

    Args:
        get_service: returns the engine's service (called per request, so the model may load
            after the router is built); it raises UnavailableError while there is none.
        health: the monitor the server feeds every rerank to.
        responses: the error responses to document on ``POST /v1/explain`` (the server's).
    """
    router = APIRouter(tags=["insight"])

    @router.post("/v1/explain", response_model=ExplainResponse, responses=responses)
    async def post_explain(request: Request, body: ExplainRequest) -> dict[str, Any]:
        """Sentence- (or word-) level attribution of one document's score, by occlusion.

        The whole document and each copy with one segment removed are scored as one request
        through the model queue (at low priority, behind rerank requests).
        """
        timings: Timings = getattr(request.state, "timings", None) or Timings()
        result = await get_service(body.model).explain(
            body.query, body.document, body.granularity, timings, instruction=body.instruction
        )
        return result.to_dict()

    @router.get("/v1/health/ranking")
    def get_health() -> dict[str, Any]:
        """Ranking health: snapshot and verdicts, thresholds, the window and recent crossings."""
        return health.report()

    @router.get("/v1/demo/scenarios")
    def get_scenarios() -> dict[str, Any]:
        """Every shipped demo scenario, one entry per language variant."""
        return {"scenarios": [s.to_dict() for s in load_scenarios()]}

    return router


def _asset(name: str) -> str:
    return str(resources.files("rankgate.insight") / "playground" / name)


def mount_playground(app: FastAPI) -> None:
    """Serve the playground page at ``/`` and its two assets under ``/playground/``.

    Only fixed files are served (no directory mount), so unknown paths still reach the
    server's own 404 handling.
    """

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        with open(_asset("index.html"), encoding="utf-8") as page:
            return HTMLResponse(page.read())

    for name, media_type in _ASSETS.items():
        app.add_api_route(
            f"/playground/{name}", _file(name, media_type), methods=["GET"], include_in_schema=False
        )


def _file(name: str, media_type: str) -> Callable[[], FileResponse]:
    # A closure, not default arguments: FastAPI would expose those as query parameters.
    def serve() -> FileResponse:
        return FileResponse(_asset(name), media_type=media_type)

    return serve
