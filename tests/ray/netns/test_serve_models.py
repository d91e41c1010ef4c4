"""Several models behind Ray Serve: each replica serves both, a request picks one by name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rankgate import Reranker
from rankgate.config import RerankerSettings
from rankgate.ray import RaySettings, serve_app
from rankgate.server import ServerSettings

from .conftest import ServeURL, deploy, tiny_settings

QUERY = "how do I reset the router password?"
DOCS = ["Hold the reset button for ten seconds.", "Four gigabit ports."]


@pytest.fixture(scope="module")
def two_models(serve_port: int, tiny_model: Path, qwen3_dir: Path) -> Iterator[ServeURL]:
    from ray import serve

    models = {
        "fast": RerankerSettings(**tiny_settings(tiny_model)),
        "llm": RerankerSettings(model=str(qwen3_dir), device="cpu"),
    }
    ray_settings = RaySettings(replicas=1, num_cpus_per_replica=1, app_name="models")
    yield deploy(serve_port, serve_app(ServerSettings(), models, ray_settings), "models")
    serve.delete("models")


def test_each_model_answers_by_name_and_an_unknown_one_is_404(
    two_models: ServeURL, tiny_library: Reranker, qwen3_dir: Path
) -> None:
    llm = Reranker(str(qwen3_dir), device="cpu")
    with httpx.Client(base_url=two_models.url, timeout=60) as c:
        for name, library in (("fast", tiny_library), ("llm", llm)):
            r = c.post("/v2/rerank", json={"model": name, "query": QUERY, "documents": DOCS})
            assert r.status_code == 200, r.text
            got = [
                x["relevance_score"] for x in sorted(r.json()["results"], key=lambda x: x["index"])
            ]
            want = library.compute_score([(QUERY, d) for d in DOCS], normalize=True)
            assert got == pytest.approx(want, abs=1e-5), name
        unknown = c.post("/v2/rerank", json={"model": "other", "query": QUERY, "documents": DOCS})
        assert unknown.status_code == 404 and "'fast', 'llm'" in unknown.text
        assert [m["id"] for m in c.get("/v1/models").json()["data"]] == ["fast", "llm"]
