"""Shared pieces of the benchmarks: the cached model, workloads, token accounting, FLOPs, machine.

Kept free of any peer (rankgate, sentence-transformers, FlagEmbedding) so that ``bench_core.py``
reads as the comparison itself. torch is imported lazily, inside the functions that need it.
"""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL_DIR = ROOT / "benchmarks" / ".models" / "bge-m3-arch"

# bge-reranker-v2-m3 (XLM-RoBERTa large, 8192 positions); see rankgate.testing.build_model.
ARCH = {
    "layers": 24,
    "hidden": 1024,
    "heads": 16,
    "intermediate": 4096,
    "vocab_size": 250002,
    "max_positions": 8194,
}
_CONFIG_KEYS = {
    "layers": "num_hidden_layers",
    "hidden": "hidden_size",
    "heads": "num_attention_heads",
    "intermediate": "intermediate_size",
    "vocab_size": "vocab_size",
    "max_positions": "max_position_embeddings",
}

QUERY = "How do I reset the admin password of the router?"  # 23 tokens with the model's tokenizer


def ensure_model(model_dir: Path) -> tuple[Path, float | None]:
    """Return ``model_dir`` holding the random bge-m3-architecture model, building it if needed.

    A directory whose ``config.json`` matches :data:`ARCH` and which holds the weights is reused.
    A build goes to a sibling ``.partial`` directory first, so an interrupted build is never
    mistaken for a cached one. Returns the directory and the build time (None when reused).
    """
    if _is_cached(model_dir):
        return model_dir, None
    from rankgate.testing import build_model

    partial = model_dir.with_name(model_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(model_dir, ignore_errors=True)
    started = time.perf_counter()
    build_model(partial, **ARCH)
    partial.rename(model_dir)
    return model_dir, time.perf_counter() - started


def _is_cached(model_dir: Path) -> bool:
    config_path = model_dir / "config.json"
    if not config_path.is_file() or not any(model_dir.glob("*.safetensors")):
        return False
    config = json.loads(config_path.read_text())
    return all(config.get(_CONFIG_KEYS[k]) == v for k, v in ARCH.items())


def make_documents(
    count: int, target_tokens: int, count_tokens, *, spread: float = 0.15, seed: int = 0
) -> list[str]:
    """``count`` documents of about ``target_tokens`` tokens each, the same on every run.

    Each document is a seeded shuffle of the multilingual sample sentences, repeated as needed and
    cut (at a character, found by bisection) where ``count_tokens`` reaches its own target, drawn
    uniformly within ``target_tokens * (1 ± spread)`` so that batches see realistic, uneven lengths.
    """
    from rankgate.testing import SAMPLE_TEXT

    sentences = SAMPLE_TEXT[:-1]  # the last sample is punctuation and digits, not prose
    docs = []
    for i in range(count):
        rng = random.Random(seed * 1_000_003 + i)
        goal = round(target_tokens * rng.uniform(1 - spread, 1 + spread))
        text = ""
        while count_tokens(text) < goal:
            order = list(sentences)
            rng.shuffle(order)
            text = " ".join([text, *order]).strip()
        lo, hi = 1, len(text)
        while lo < hi:  # the shortest prefix that reaches the goal
            mid = (lo + hi) // 2
            if count_tokens(text[:mid]) >= goal:
                hi = mid
            else:
                lo = mid + 1
        docs.append(text[:lo])
    return docs


@dataclass(frozen=True)
class TokenAccount:
    """Tokens a request carries (``real``) against tokens the model computes (``computed``)."""

    real: int
    computed: int

    @property
    def share(self) -> float:
        return self.real / self.computed


def padded_tokens(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> int:
    """Tokens computed when each batch (indices into ``lengths``) is padded to its longest pair."""
    return sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)


def fixed_batches(order: Sequence[int], size: int) -> list[list[int]]:
    """Consecutive batches of ``size`` pairs taken in ``order`` (CrossEncoder, FlagReranker)."""
    order = list(order)
    return [order[i : i + size] for i in range(0, len(order), size)]


def encoder_params(config: dict) -> int:
    """Parameters a token passes through in the encoder: all but embeddings and the head."""
    h, i = config["hidden_size"], config["intermediate_size"]
    attention = 4 * (h * h + h) + 2 * h  # Q, K, V, O (+ biases) and the LayerNorm
    ffn = h * i + i + i * h + h + 2 * h  # up, down (+ biases) and the LayerNorm
    return config["num_hidden_layers"] * (attention + ffn)


def request_flops(lengths: Sequence[int], config: dict) -> float:
    """Model FLOPs for pairs of the given real lengths (padding is not counted).

    Per token of a pair of length ``s``:  2 * P + 4 * L * s * H, where P = encoder_params (each
    weight is one multiply-add, 2 FLOPs), L layers, H hidden size; the attention term is Q·Kᵀ
    (2·s·H) plus the weighted sum of V (2·s·H) in each layer. Embedding lookups, softmax, GELU and
    the classifier head (which sees one token) are left out: well under 1% here.
    """
    p = encoder_params(config)
    layers, hidden = config["num_hidden_layers"], config["hidden_size"]
    return float(sum(s * (2 * p + 4 * layers * s * hidden) for s in lengths))


def matmul_peak(seconds: float = 2.0, n: int = 2048) -> float:
    """fp32 GFLOP/s of ``torch.matmul`` on two n×n matrices, looped for about ``seconds``."""
    import torch

    a = torch.randn(n, n, dtype=torch.float32)
    b = torch.randn(n, n, dtype=torch.float32)
    torch.matmul(a, b)  # warm-up: thread pool, caches
    runs, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        torch.matmul(a, b)
        runs += 1
    return 2 * n**3 * runs / elapsed / 1e9


def machine() -> dict:
    """CPU model, core counts and torch's thread count."""
    import torch

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def median(values: Sequence[float]) -> float:
    """The median of timed runs (the middle one; the mean of the two middle ones if even)."""
    return statistics.median(values)
