"""The peers: each times its own whole-request call on the same model, workload and threads.

- ``rankgate``: :class:`rankgate.Reranker` on torch (the exact fp32 path; fp16 on a GPU);
- ``rankgate-padded`` / ``rankgate-packed``: the same with packed forward passes forced off or
  on (A/B peers: packing is the CPU default and opt-in on CUDA);
- ``rankgate-blas``: the same with its fp32 linear layers on torch's BLAS (MKL) rather than what
  the CPU dispatch picked (an A/B peer; the same as ``rankgate`` where MKL is the pick);
- ``rankgate-bf16-mixed`` / ``rankgate-bf16``: the same in ``bf16-mixed`` (bf16 products, fp32
  around them) and in pure bfloat16 (CPU peers, default on CPUs with bf16 hardware);
- ``rankgate-onnx`` / ``rankgate-int8``: the same on onnxruntime, with the model exported by
  :func:`rankgate.backends.onnx_export.export_onnx` (fp32, and int8 dynamically quantized);
- ``crossencoder`` / ``crossencoder-onnx``: sentence-transformers ``CrossEncoder.rank``, on torch
  and on its ONNX backend (which needs ``optimum-onnx``), the latter loading rankgate's fp32
  export so that both ONNX peers run the very same graph;
- ``flag``: FlagEmbedding ``FlagReranker.compute_score`` with its defaults, in its own
  environment (transformers 4) through ``scripts/flag_reference.py --bench``.

Each peer also scores the fixed deviation pair set (raw logits), compared with ``rankgate``'s.
With ``device="cuda"`` every torch peer runs in fp16 on the GPU (FlagReranker with its own
``use_fp16``); the ONNX peers stay CPU paths and are skipped unless onnxruntime has CUDA.
"""

from __future__ import annotations

import functools
import inspect
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rankgate.backends.base import is_cuda
from rankgate.bench.measure import (
    cpu_share,
    fixed_batches,
    packed_flops,
    padded_flops,
    padded_tokens,
    timed,
)
from rankgate.bench.models import BuiltModel, ensure_onnx
from rankgate.bench.workload import Workload

__all__ = ["PEER_FUNCTIONS", "PeerContext", "PeerRun", "PeerSkipped", "Timing"]

MAX_LENGTH = 1024  # rankgate's default and what CrossEncoder is given (if the model allows it)


class PeerSkipped(Exception):
    """A peer cannot run here (a missing environment or package); the message says why."""


def run_worker(argv: list[str], request: dict[str, Any], what: str) -> dict[str, Any]:
    """Run a peer's worker script in its own environment: ``request`` as JSON on stdin, its
    JSON reply from stdout.

    Raises:
        PeerSkipped: the worker failed; the message ends with its stderr.
    """
    proc = subprocess.run(
        argv, input=json.dumps(request), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise PeerSkipped(f"{what} failed: {proc.stderr.strip()[-600:]}")
    reply: dict[str, Any] = json.loads(proc.stdout)
    return reply


@dataclass(frozen=True)
class PeerContext:
    """What every peer gets: the same model, workload, repeats and threads."""

    model: BuiltModel
    workload: Workload
    repeats: int
    threads: int
    flag_python: Path
    flag_script: Path
    st_onnx_python: Path
    """A Python whose sentence-transformers can load ONNX (optimum-onnx), if this one cannot."""
    device: str = "cpu"
    """``cpu`` (every peer in fp32) or ``cuda`` / ``cuda:N`` (every peer in fp16)."""

    @property
    def gpu(self) -> bool:
        return is_cuda(self.device)

    @property
    def dtype(self) -> str:
        """The precision every peer runs in on this device."""
        return "float16" if self.gpu else "float32"

    @property
    def max_length(self) -> int:
        """1024, or the model's usable positions if fewer (XLM-R reserves two)."""
        return min(MAX_LENGTH, int(self.model.config["max_position_embeddings"]) - 2)


@dataclass
class Timing:
    """One peer on one request size: timed runs and the tokens it really computed."""

    name: str
    seconds: list[float]
    cpu_seconds: list[float]
    pairs: int
    lengths: list[int]
    """Real tokens of each pair, as the peer built it."""
    computed_tokens: int
    """Tokens computed including padding (and repeated work), replaying the peer's batching."""
    computed_flops: float
    """Model FLOPs of the same replay (padding, repeated work and skipped work accounted)."""
    max_length: int
    batching: str
    threads: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median_s(self) -> float:
        return float(np.median(self.seconds))

    @property
    def pairs_per_s(self) -> float:
        return self.pairs / self.median_s

    @property
    def cpu_share(self) -> float:
        return cpu_share(self.seconds, self.cpu_seconds, self.threads)


@dataclass
class PeerRun:
    """A peer's timings by request size, and its raw scores on the deviation set (if any)."""

    timings: dict[int, Timing]
    deviation_scores: list[float] | None
    note: str = ""


def _rankgate(
    ctx: PeerContext,
    name: str,
    onnx_file: str | None,
    packed: bool | None = None,
    *,
    dtype: str | None = None,
    cpu_matmul: str = "auto",
) -> PeerRun:
    from rankgate import Reranker
    from rankgate.engine.batching import batch_tokens, plan_batches

    note = ""
    if onnx_file is None:
        if dtype is not None and ctx.gpu:
            raise PeerSkipped(f"{name} is a CPU peer; on a GPU every peer runs in fp16")
        rr = Reranker(
            str(ctx.model.path),
            device=ctx.device,
            dtype=dtype or ctx.dtype,
            max_length=ctx.max_length,
            threads=ctx.threads,
            packed=packed,
            cpu_matmul=cpu_matmul,
            bf16_probe=False,
        )
    else:
        if ctx.gpu:
            _onnx_on_gpu(onnx_file)
        out, took = ensure_onnx(ctx.model.path, int8=onnx_file != "model.onnx")
        note = f"ONNX export {out} ({'cached' if took is None else f'exported in {took:.0f} s'})"
        rr = Reranker(
            str(out),
            backend="onnx",
            onnx_file=onnx_file,
            device=ctx.device,
            max_length=ctx.max_length,
            threads=ctx.threads,
        )
    size = rr.settings.max_batch_size
    is_packed = rr.backend.packed  # what the backend does, whatever was asked
    wl = ctx.workload
    timings = {}
    for n in wl.sizes:
        docs = wl.docs(n)
        lengths = [len(pair) for pair in rr.prepare(wl.query, docs).pairs]
        batches = plan_batches(
            lengths, rr.batch_tokens, size, rr.batch_overhead_tokens, packed=is_packed
        )
        seconds, cpu = timed(functools.partial(rr.rerank, wl.query, docs), ctx.repeats)
        timings[n] = Timing(
            name,
            seconds,
            cpu,
            n,
            lengths,
            sum(batch_tokens([lengths[i] for i in b], is_packed) for b in batches),
            (
                packed_flops(lengths, ctx.model.config)
                if is_packed
                else padded_flops(lengths, batches, ctx.model.config)
            ),
            rr.max_length,
            (
                f"packed (real tokens only), ≤{rr.batch_tokens} tokens, ≤{size} pairs a pass"
                if is_packed
                else f"≤{rr.batch_tokens} padded tokens, ≤{size} pairs, length-sorted, split "
                f"where padding costs more than a pass ({rr.batch_overhead_tokens} tokens)"
            )
            + f" ({rr.backend.name}, {rr.backend.dtype}; {rr.info().kernels})",
            ctx.threads,
            {"batches": [len(b) for b in batches]},
        )
    pairs = [(wl.query, d) for d in wl.deviation_documents]
    return PeerRun(timings, rr.compute_score(pairs), note)


def _onnx_on_gpu(onnx_file: str) -> None:
    """Raises PeerSkipped unless this ONNX peer can run on the GPU."""
    if onnx_file != "model.onnx":
        raise PeerSkipped("dynamic int8 quantization is a CPU path; on a GPU fp16 is the fast one")
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise PeerSkipped("onnxruntime here has no CUDAExecutionProvider (install onnxruntime-gpu)")


def _cross_encoder(ctx: PeerContext, name: str, onnx: bool) -> PeerRun:
    """sentence-transformers sorts pairs by character count (longest first), cuts batches of
    ``batch_size`` and pads each to its longest pair, which the padded-token count replays."""
    import torch
    from sentence_transformers import CrossEncoder

    note, path = "", ctx.model.path
    kwargs: dict[str, Any] = {}
    if onnx and ctx.gpu:
        raise PeerSkipped("the ONNX peers run on the CPU; on a GPU CrossEncoder runs on torch")
    if ctx.gpu:
        kwargs = {"model_kwargs": {"dtype": torch.float16}}
    if onnx:
        elsewhere = not _imports("optimum.onnxruntime")
        if elsewhere and not _worker_works(ctx.st_onnx_python):
            raise PeerSkipped(
                "sentence-transformers' ONNX backend needs optimum-onnx, whose releases pin "
                f"transformers<4.58; neither this environment nor {ctx.st_onnx_python} has it "
                "(build .venv-st-onnx with scripts/setup-st-onnx-env.sh, or make st-onnx-env)"
            )
        path, took = ensure_onnx(ctx.model.path, int8=False)
        note = f"ONNX export {path} ({'cached' if took is None else f'exported in {took:.0f} s'})"
        if elsewhere:
            run = _cross_encoder_elsewhere(ctx, name, path)
            run.note = f"{note}; {run.note}"
            return run
        kwargs = {"backend": "onnx", "model_kwargs": {"file_name": "model.onnx"}}
    ce = CrossEncoder(str(path), device=ctx.device, max_length=ctx.max_length, **kwargs)
    default = inspect.signature(ce.rank).parameters["batch_size"].default
    size = default if isinstance(default, int) else 32
    wl = ctx.workload
    timings = {}
    for n in wl.sizes:
        docs = wl.docs(n)
        enc = ce.tokenizer(
            [wl.query] * n, docs, truncation="longest_first", max_length=ctx.max_length
        )
        lengths = [len(ids) for ids in enc["input_ids"]]
        order = np.argsort([-(len(wl.query) + len(d)) for d in docs], kind="stable")
        batches = fixed_batches(order, size)
        seconds, cpu = timed(functools.partial(ce.rank, wl.query, docs), ctx.repeats)
        timings[n] = Timing(
            name,
            seconds,
            cpu,
            n,
            lengths,
            padded_tokens(lengths, batches),
            padded_flops(lengths, batches, ctx.model.config),
            ctx.max_length,
            f"{size} pairs, sorted by characters ({ce.model.dtype})",
            ctx.threads,
        )
    pairs = [(wl.query, d) for d in wl.deviation_documents]
    raw = ce.predict(pairs, activation_fn=torch.nn.Identity(), show_progress_bar=False)
    return PeerRun(timings, [float(s) for s in np.asarray(raw).reshape(-1)], note)


def _imports(module: str) -> bool:
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


WORKER = Path(__file__).with_name("ce_worker.py")


def _worker_works(python: Path) -> bool:
    if not python.exists():
        return False
    check = subprocess.run([str(python), str(WORKER), "--check"], capture_output=True, check=False)
    return check.returncode == 0


def _cross_encoder_elsewhere(ctx: PeerContext, name: str, onnx_dir: Path) -> PeerRun:
    """``CrossEncoder`` on its ONNX backend in ``ctx.st_onnx_python`` (see ``ce_worker.py``)."""
    wl = ctx.workload
    request = {
        "model": str(onnx_dir),
        "backend": "onnx",
        "file_name": "model.onnx",
        "query": wl.query,
        "sizes": {str(n): wl.docs(n) for n in wl.sizes},
        "deviation_docs": list(wl.deviation_documents),
        "repeats": ctx.repeats,
        "threads": ctx.threads,
        "max_length": ctx.max_length,
    }
    reply = run_worker([str(ctx.st_onnx_python), str(WORKER)], request, "ce_worker.py")
    size = int(reply["batch_size"])
    timings = {}
    for n in wl.sizes:
        got, docs = reply["timings"][str(n)], wl.docs(n)
        order = np.argsort([-(len(wl.query) + len(d)) for d in docs], kind="stable")
        batches = fixed_batches(order, size)
        timings[n] = Timing(
            name,
            got["seconds"],
            got["cpu_seconds"],
            n,
            got["lengths"],
            padded_tokens(got["lengths"], batches),
            padded_flops(got["lengths"], batches, ctx.model.config),
            ctx.max_length,
            f"{size} pairs, sorted by characters",
            ctx.threads,
        )
    versions = ", ".join(f"{k} {v}" for k, v in reply["versions"].items())
    return PeerRun(timings, reply["deviation_scores"], f"run in {ctx.st_onnx_python}: {versions}")


def _flag(ctx: PeerContext) -> PeerRun:
    """FlagEmbedding sorts pairs by token count, pads batches of ``batch_size`` to their longest,
    and first runs the first batch once more as an out-of-memory probe whose result it discards;
    that probe is real work in every call, so it counts as computed tokens. One process per size
    (loading is not timed)."""
    if not ctx.flag_python.exists():
        raise PeerSkipped(f"no {ctx.flag_python} (build it with scripts/setup-flag-env.sh)")
    if not ctx.flag_script.is_file():
        raise PeerSkipped(f"no {ctx.flag_script} (run from the rankgate repository)")
    wl = ctx.workload
    timings, facts = {}, {}
    for n in wl.sizes:
        request = {
            "model": str(ctx.model.path),
            "pairs": [[wl.query, d] for d in wl.docs(n)],
            "repeats": ctx.repeats,
            "threads": ctx.threads,
        }
        if ctx.gpu:  # FlagReranker's own fp16 switch (it forces fp32 on the CPU)
            request.update(device=ctx.device, use_fp16=True)
        argv = [str(ctx.flag_python), str(ctx.flag_script), "--bench"]
        reply = run_worker(argv, request, "flag_reference.py")
        lengths, size = reply["lengths"], reply["batch_size"]
        batches = fixed_batches(np.argsort([-s for s in lengths], kind="stable"), size)
        computed = [*batches[:1], *batches]  # the first batch twice: the OOM probe, then for real
        facts = {k: reply[k] for k in ("threads", "attn_implementation", "versions")}
        facts["dtype"] = reply.get("dtype", "float32")
        timings[n] = Timing(
            "flag",
            reply["seconds"],
            reply["cpu_seconds"],
            n,
            lengths,
            padded_tokens(lengths, computed),
            padded_flops(lengths, computed, ctx.model.config),
            reply["max_length"],
            f"{size} pairs, sorted by tokens, + 1st batch again (OOM probe) ({facts['dtype']})",
            reply["threads"],
            facts,
        )
    versions = ", ".join(f"{k} {v}" for k, v in facts.get("versions", {}).items())
    note = f"reference env: {versions}; attention {facts.get('attn_implementation')}"
    return PeerRun(timings, None, note)


PEER_FUNCTIONS: dict[str, Callable[[PeerContext], PeerRun]] = {
    "rankgate": lambda ctx: _rankgate(ctx, "rankgate", None),
    "rankgate-padded": lambda ctx: _rankgate(ctx, "rankgate-padded", None, packed=False),
    "rankgate-packed": lambda ctx: _rankgate(ctx, "rankgate-packed", None, packed=True),
    "rankgate-blas": lambda ctx: _rankgate(ctx, "rankgate-blas", None, cpu_matmul="blas"),
    "rankgate-bf16-mixed": lambda ctx: _rankgate(
        ctx, "rankgate-bf16-mixed", None, dtype="bf16-mixed"
    ),
    "rankgate-bf16": lambda ctx: _rankgate(ctx, "rankgate-bf16", None, dtype="bfloat16"),
    "rankgate-onnx": lambda ctx: _rankgate(ctx, "rankgate-onnx", "model.onnx"),
    "rankgate-int8": lambda ctx: _rankgate(ctx, "rankgate-int8", "model_int8.onnx"),
    "crossencoder": lambda ctx: _cross_encoder(ctx, "crossencoder", onnx=False),
    "crossencoder-onnx": lambda ctx: _cross_encoder(ctx, "crossencoder-onnx", onnx=True),
    "flag": _flag,
}
"""Every peer by name, in the order they run and are listed."""
