"""Measuring: timed calls, token accounting, the FLOP model, the matmul peak, score deviation.

Kept free of any peer, so that the same yardsticks apply to all of them. torch is imported
lazily, inside the functions that need it.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from rankgate.backends.base import is_cuda

__all__ = [
    "Deviation",
    "cpu_share",
    "deviation",
    "encoder_params",
    "fixed_batches",
    "machine",
    "matmul_peak",
    "padded_tokens",
    "peak_label",
    "request_flops",
    "spearman",
    "timed",
    "versions",
]

VERSIONED = (
    "rankgate",
    "torch",
    "transformers",
    "sentence-transformers",
    "tokenizers",
    "onnxruntime",
    "optimum-onnx",
)


def timed(call: Callable[[], object], repeats: int) -> tuple[list[float], list[float]]:
    """One untimed warm-up call, then ``repeats`` timed calls: (wall, process CPU) seconds."""
    call()
    seconds, cpu_seconds = [], []
    for _ in range(repeats):
        started, cpu = time.perf_counter(), time.process_time()
        call()
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(time.process_time() - cpu)
    return seconds, cpu_seconds


def cpu_share(seconds: Sequence[float], cpu_seconds: Sequence[float], threads: int) -> float:
    """Median of CPU time over what ``threads`` could use in the wall time (low: other load)."""
    pairs = zip(cpu_seconds, seconds, strict=True)
    return statistics.median([cpu / (wall * threads) for cpu, wall in pairs])


def padded_tokens(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> int:
    """Tokens computed when each batch (indices into ``lengths``) is padded to its longest pair."""
    return sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)


def fixed_batches(order: Sequence[int] | np.ndarray, size: int) -> list[list[int]]:
    """Consecutive batches of ``size`` pairs taken in ``order`` (CrossEncoder, FlagReranker)."""
    order = [int(i) for i in order]
    return [order[i : i + size] for i in range(0, len(order), size)]


def encoder_params(config: dict[str, Any]) -> int:
    """Parameters a token passes through in the encoder: all but embeddings and the head."""
    h, i = config["hidden_size"], config["intermediate_size"]
    attention = 4 * (h * h + h) + 2 * h  # Q, K, V, O (+ biases) and the LayerNorm
    ffn = h * i + i + i * h + h + 2 * h  # up, down (+ biases) and the LayerNorm
    return int(config["num_hidden_layers"] * (attention + ffn))


def request_flops(lengths: Sequence[int], config: dict[str, Any]) -> float:
    """Model FLOPs for pairs of the given real lengths (padding is not counted).

    Per token of a pair of length ``s``:  2 * P + 4 * L * s * H, where P = encoder_params (each
    weight is one multiply-add, 2 FLOPs), L layers, H hidden size; the attention term is Q·Kᵀ
    (2·s·H) plus the weighted sum of V (2·s·H) in each layer. Embedding lookups, softmax, GELU and
    the classifier head (which sees one token) are left out: well under 1% here.

    Example:
        >>> cfg = {"hidden_size": 2, "intermediate_size": 4, "num_hidden_layers": 1}
        >>> request_flops([3], cfg) == 3 * (2 * encoder_params(cfg) + 4 * 1 * 3 * 2)
        True
    """
    p = encoder_params(config)
    layers, hidden = config["num_hidden_layers"], config["hidden_size"]
    return float(sum(s * (2 * p + 4 * layers * s * hidden) for s in lengths))


def matmul_peak(
    seconds: float = 2.0, n: int | None = None, windows: int = 5, device: str = "cpu"
) -> float:
    """GFLOP/s of ``torch.matmul`` on two n×n matrices: the best of ``windows`` windows over
    about ``seconds`` in all, so that a moment of load from other processes lowers one window
    rather than the peak. On the CPU in fp32 (n = 2048); on a CUDA device in fp16 (n = 8192,
    the card's dense tensor-core rate, with the device synchronised around each window)."""
    import torch

    gpu = is_cuda(device)
    n = n or (8192 if gpu else 2048)
    dtype = torch.float16 if gpu else torch.float32
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)

    def sync() -> None:
        if gpu:
            torch.cuda.synchronize(device)

    torch.matmul(a, b)  # warm-up: thread pool, caches, kernel selection
    sync()
    best = 0.0
    for _ in range(windows):
        runs, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds / windows or runs == 0:
            torch.matmul(a, b)
            runs += 1
            if gpu and runs % 10 == 0:
                sync()
        sync()
        elapsed = time.perf_counter() - started
        best = max(best, 2 * n**3 * runs / elapsed / 1e9)
    return best


def peak_label(device: str) -> str:
    """What :func:`matmul_peak` measures on ``device``, for report headers."""
    if is_cuda(device):
        return "fp16 peak (torch.matmul 8192×8192 on the GPU, best of 5 windows)"
    return "fp32 peak (torch.matmul 2048×2048, best of 5 windows)"


def machine(device: str = "cpu") -> dict[str, Any]:
    """CPU model, core counts, torch's thread count and the load average now; on a CUDA device
    also the card (name, memory, multiprocessors, compute capability) and the CUDA version."""
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
    found: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "loadavg": list(os.getloadavg()),
    }
    if is_cuda(device):
        props = torch.cuda.get_device_properties(device)
        found["gpu"] = {
            "name": props.name,
            "memory_gib": round(props.total_memory / 2**30, 1),
            "multiprocessors": props.multi_processor_count,
            "capability": f"{props.major}.{props.minor}",
            "cuda": torch.version.cuda,
        }
    return found


def versions(names: Sequence[str] = VERSIONED) -> dict[str, str]:
    """Installed versions of ``names`` in this environment ("not installed" when absent)."""
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def spearman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Spearman rank correlation of two score lists (average ranks for ties).

    Example:
        >>> spearman([0.1, 0.5, 0.3], [1.0, 9.0, 2.0])
        1.0
    """

    def ranks(values: Sequence[float] | np.ndarray) -> np.ndarray:
        x = np.asarray(values, dtype=np.float64)
        order = np.argsort(x, kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(len(x), dtype=np.float64)
        for value in np.unique(x):  # ties share their mean rank
            tied = x == value
            r[tied] = r[tied].mean()
        return r

    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = float(np.sqrt((ra**2).sum() * (rb**2).sum()))
    return float((ra * rb).sum() / denom) if denom else float("nan")


@dataclass(frozen=True)
class Deviation:
    """How far a peer's scores are from the fp32 reference on the fixed pair set."""

    max_abs: float
    """Largest |score - reference score| (raw logits)."""
    relative: float
    """``max_abs`` over the reference's spread (max - min): 0.01 = 1% of the score range."""
    spearman: float
    """Rank correlation with the reference: 1.0 = the same order."""


def deviation(scores: Sequence[float], reference: Sequence[float]) -> Deviation:
    """Compare ``scores`` with ``reference`` (the same pairs, in the same order).

    Example:
        >>> d = deviation([0.0, 1.1, 2.0], [0.0, 1.0, 2.0])
        >>> round(d.relative, 3), d.spearman
        (0.05, 1.0)
    """
    got = np.asarray(scores, dtype=np.float64)
    want = np.asarray(reference, dtype=np.float64)
    max_abs = float(np.max(np.abs(got - want)))
    spread = float(want.max() - want.min())
    return Deviation(max_abs, max_abs / spread if spread else float("inf"), spearman(got, want))
