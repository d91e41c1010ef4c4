"""Measuring: timed calls, token accounting, the FLOP model, the matmul peak, score deviation.

Kept free of any peer, so that the same yardsticks apply to all of them. torch is imported
lazily, inside the functions that need it.
"""

from __future__ import annotations

import functools
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from rankgate.backends.base import is_cuda

__all__ = [
    "Deviation",
    "cpu_share",
    "decoder_attention_flops",
    "decoder_head_flops",
    "decoder_token_flops",
    "deviation",
    "encoder_params",
    "fixed_batches",
    "machine",
    "matmul_peak",
    "packed_flops",
    "padded_flops",
    "padded_tokens",
    "peak_label",
    "peak_name",
    "peak_shapes",
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


def timed(
    call: Callable[[], object], repeats: int, warmup: bool = True
) -> tuple[list[float], list[float]]:
    """One untimed warm-up call (unless ``warmup`` is False: the peer already ran in this
    process), then ``repeats`` timed calls: (wall, process CPU) seconds."""
    if warmup:
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


def padded_flops(
    lengths: Sequence[int], batches: Sequence[Sequence[int]], config: dict[str, Any]
) -> float:
    """Model FLOPs a padded forward computes: every pair of a batch (indices into ``lengths``)
    at the batch's longest length, attention over that width too (:func:`request_flops`'s
    per-token cost). Repeated work counts as often as a batch is listed."""
    return sum(
        request_flops([max(lengths[i] for i in batch)] * len(batch), config) for batch in batches
    )


def packed_flops(lengths: Sequence[int], config: dict[str, Any]) -> float:
    """Model FLOPs of rankgate's packed forward: real tokens only, and in the last layer the
    keys and values of every token but queries, attention output and feed-forward block for
    the first token of each pair alone (:mod:`rankgate.backends.packed`)."""
    layers, hidden = config["num_hidden_layers"], config["hidden_size"]
    per_layer = encoder_params(config) / layers
    kv = 2 * (hidden * hidden + hidden)  # the key and value projections, with biases
    full = request_flops(lengths, {**config, "num_hidden_layers": layers - 1}) if layers > 1 else 0
    last = sum(2 * kv * s + 2 * (per_layer - kv) + 4 * s * hidden for s in lengths)
    return float(full + last)


def _decoder_dims(config: dict[str, Any]) -> tuple[int, int, int, int]:
    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    head_dim = int(config.get("head_dim") or hidden // heads)
    return int(config["num_hidden_layers"]), hidden, heads, head_dim


def decoder_token_flops(config: dict[str, Any]) -> float:
    """FLOPs of one token through a causal LM's decoder body (2 per matrix weight): the query,
    key, value and output projections (grouped key/value heads counted as they are) and the
    gated MLP's three products. Norms, rotary positions and activations are left out.

    Example:
        >>> cfg = {"hidden_size": 4, "num_attention_heads": 2, "num_key_value_heads": 1,
        ...        "intermediate_size": 8, "num_hidden_layers": 1}
        >>> decoder_token_flops(cfg) == 2 * (4 * 4 * 2 + 4 * 2 * 2 + 3 * 4 * 8)
        True
    """
    layers, hidden, heads, head_dim = _decoder_dims(config)
    kv = int(config.get("num_key_value_heads") or heads)
    per_layer = 2 * hidden * heads * head_dim + 2 * hidden * kv * head_dim
    per_layer += 3 * hidden * int(config["intermediate_size"])
    return 2.0 * layers * per_layer


def decoder_head_flops(config: dict[str, Any]) -> float:
    """FLOPs of the whole LM head (the vocabulary's logits) for one position."""
    return 2.0 * int(config["vocab_size"]) * int(config["hidden_size"])


def decoder_attention_flops(rows: int, context: int, config: dict[str, Any]) -> float:
    """Attention FLOPs (scores and weighted sums, every layer and head) of ``rows`` query rows
    that see ``context`` earlier keys and, causally, each other: row j sees context + j + 1.

    Example:
        >>> cfg = {"hidden_size": 4, "num_attention_heads": 2, "num_hidden_layers": 1}
        >>> decoder_attention_flops(2, 3, cfg) == 4 * 2 * 2 * (4 + 5)
        True
    """
    layers, _, heads, head_dim = _decoder_dims(config)
    keys = rows * context + rows * (rows + 1) // 2
    return 4.0 * layers * heads * head_dim * keys


Shape = tuple[int, int, int]
"""A matrix product ``(m, k, n)``: an m×k matrix times a k×n one."""


def peak_shapes(device: str = "cpu", config: dict[str, Any] | None = None) -> tuple[Shape, ...]:
    """The products :func:`matmul_peak` times: a square one (2048³ fp32 on the CPU, 8192³ fp16
    on a GPU) and, given the model's config, its two feed-forward products over one forward
    pass's worth of tokens (4096 on the CPU, 16384 on a GPU: the engine's default budgets)."""
    gpu = is_cuda(device)
    n, tokens = (8192, 16384) if gpu else (2048, 4096)
    shapes: list[Shape] = [(n, n, n)]
    if config:
        hidden, inner = int(config["hidden_size"]), int(config["intermediate_size"])
        shapes += [(tokens, hidden, inner), (tokens, inner, hidden)]
    return tuple(shapes)


def matmul_peak(
    seconds: float = 2.0,
    shapes: Sequence[Shape] | None = None,
    windows: int = 5,
    device: str = "cpu",
    precision: str = "auto",
) -> float:
    """GFLOP/s of the best matrix-product kernel: the best window of all, ``windows`` windows
    per shape and kernel over about ``seconds`` in all (at least one product a window), so that a
    moment of load from other processes lowers one window rather than the peak, and a shape or
    library that runs faster than the square product raises it (the model's own products must
    not beat the yardstick). ``precision``: ``auto`` is fp32 on the CPU and fp16 on a CUDA
    device (the card's dense tensor-core rate, synchronised around each window); ``bf16`` is
    bf16 products. On the CPU every product runs on ``torch.matmul`` (MKL for fp32) and on
    oneDNN's linear op, the two libraries rankgate's CPU paths use. ``shapes``:
    :func:`peak_shapes`."""
    import torch

    from rankgate.backends.kernels import onednn_available

    gpu = is_cuda(device)
    if precision == "auto":
        dtype = torch.float16 if gpu else torch.float32
    else:
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]
    shapes = tuple(shapes or peak_shapes(device))
    onednn = not gpu and onednn_available(torch)

    def sync() -> None:
        if gpu:
            torch.cuda.synchronize(device)

    best = 0.0
    for m, k, n in shapes:
        a = torch.randn(m, k, dtype=dtype, device=device)
        b = torch.randn(k, n, dtype=dtype, device=device)
        kernels: list[Callable[[], Any]] = [functools.partial(torch.matmul, a, b)]
        if onednn:
            weight = b.t().contiguous()
            if dtype == torch.bfloat16:  # as rankgate's bf16 paths keep their weights
                weight = torch.ops.mkldnn._reorder_linear_weight(weight, m)
            linear = torch.ops.mkldnn._linear_pointwise
            kernels.append(functools.partial(linear, a, weight, None, "none", [], ""))
        for kernel in kernels:
            with torch.inference_mode():
                best = max(
                    best,
                    _best_window(
                        kernel,
                        2 * m * k * n,
                        seconds,
                        windows,
                        len(shapes) * len(kernels),
                        sync,
                        gpu,
                    ),
                )
        del a, b, kernels
    return best


def _best_window(
    kernel: Callable[[], Any],
    flops: float,
    seconds: float,
    windows: int,
    share: int,
    sync: Callable[[], None],
    gpu: bool,
) -> float:
    kernel()  # warm-up: thread pool, caches, kernel selection
    sync()
    best = 0.0
    for _ in range(windows):
        runs, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds / windows / share or runs == 0:
            kernel()
            runs += 1
            if gpu and runs % 10 == 0:
                sync()
        sync()
        best = max(best, flops * runs / (time.perf_counter() - started) / 1e9)
    return best


def int8_peak(
    seconds: float = 1.0, shapes: Sequence[Shape] | None = None, threads: int = 2
) -> float | None:
    """GOP/s of onnxruntime's int8 matrix product (``MatMulInteger``, uint8 × int8 → int32, the
    product dynamically quantized models run; MLAS picks AMX-INT8 / VNNI / AVX2 by CPU), best
    window over ``shapes`` (the model's feed-forward products); None without onnx and
    onnxruntime."""
    try:
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    best = 0.0
    for m, k, n in shapes or peak_shapes("cpu"):
        weight = rng.integers(-128, 127, (k, n), dtype=np.int8)
        graph = helper.make_graph(
            [helper.make_node("MatMulInteger", ["a", "b"], ["y"])],
            "int8_peak",
            [helper.make_tensor_value_info("a", TensorProto.UINT8, [m, k])],
            [helper.make_tensor_value_info("y", TensorProto.INT32, [m, n])],
            [onnx.numpy_helper.from_array(weight, "b")],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        a = rng.integers(0, 255, (m, k), dtype=np.uint8)
        run = functools.partial(session.run, None, {"a": a})
        best = max(best, _best_window(run, 2 * m * k * n, seconds, 3, 1, lambda: None, False))
    return best


def peak_name(device: str) -> str:
    """``fp16 peak`` on a CUDA device, ``fp32 peak`` elsewhere."""
    return "fp16 peak" if is_cuda(device) else "fp32 peak"


def peak_label(device: str, shapes: Sequence[Shape] | None = None) -> str:
    """What :func:`matmul_peak` measures on ``device``, for report headers."""
    shapes = tuple(shapes or peak_shapes(device))
    products = ", ".join("×".join(str(d) for d in shape) for shape in shapes)
    where = " on the GPU" if is_cuda(device) else ""
    how = "torch.matmul" if is_cuda(device) else "torch.matmul and oneDNN linear"
    return f"{peak_name(device)} ({how} {products}{where}, best window)"


def machine(device: str = "cpu") -> dict[str, Any]:
    """CPU model, core counts, torch's thread count and the load average now; on a CUDA device
    also the card (name, memory, multiprocessors, compute capability) and the CUDA version."""
    import torch

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    from rankgate.backends.cpu import choose_kernels, cpu_info

    info = cpu_info()
    kernels = choose_kernels(info)
    found: dict[str, Any] = {
        "cpu": info.model,
        "cpu_vendor": info.vendor,
        "cpu_features": info.features,
        "cpu_flags": sorted(info.flags),
        "kernels": {"fp32": kernels.fp32, "bf16": kernels.bf16, "int8": kernels.int8},
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
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
