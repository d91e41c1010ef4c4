"""Shared fixtures: tiny random models built on disk once per session (an XLM-RoBERTa
cross-encoder, and a causal LM for each decoder recipe)."""

from __future__ import annotations

import os

# No test may reach the network: make the hub client offline before anything imports it.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path

import pytest

from rankgate import Reranker
from rankgate.testing import KeywordBackend, build_model
from rankgate.testing_llm import build_decoder_model


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``make test`` runs ``-n $(TEST_WORKERS) --dist loadgroup``), keep on
    one worker the reference tests, which share a costly process (one long-lived FlagEmbedding
    worker per test process). The two Ray tests (the loopback-only suites, the two-host cluster)
    each get a group of their own, so they can run at once on two workers: each
    waits on Ray much of its time. The other tests are spread over the workers."""
    for item in items:
        if item.nodeid.startswith("tests/ray/test_in_netns.py"):
            item.add_marker(pytest.mark.xdist_group(f"ray-{item.name}"))
        elif item.get_closest_marker("reference") is not None:
            item.add_marker(pytest.mark.xdist_group("reference"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random cross-encoder with a trained tokenizer; scores spread by a wide init."""
    return build_model(tmp_path_factory.mktemp("tiny-model"), initializer_range=0.5)


@pytest.fixture(scope="session")
def reranker(tiny_model: Path) -> Reranker:
    return Reranker(str(tiny_model), device="cpu")


@pytest.fixture(scope="session")
def short_reranker(tiny_model: Path) -> Reranker:
    """max_length 64, so ordinary paragraphs need chunking."""
    return Reranker(str(tiny_model), device="cpu", max_length=64)


@pytest.fixture
def keyword() -> Reranker:
    return Reranker(backend=KeywordBackend())


@pytest.fixture(scope="session")
def qwen3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_decoder_model(tmp_path_factory.mktemp("qwen3-reranker"), "qwen3")


@pytest.fixture(scope="session")
def gemma_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_decoder_model(tmp_path_factory.mktemp("bge-reranker-v2-gemma"), "gemma")


@pytest.fixture(scope="session")
def mxbai_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_decoder_model(tmp_path_factory.mktemp("mxbai-rerank-v2"), "qwen2")
