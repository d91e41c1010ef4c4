"""The library benchmark: every peer on the same model, workload and threads, in one run.

One query against N documents of about 280 tokens (``short``: about 60); per peer and N, one
warm-up call then ``repeats`` timed calls, median reported. Model FLOP/s count real tokens only
and are compared with a fp32 matmul peak measured in the same run. Random weights: speed only.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from rankgate.backends.base import is_cuda
from rankgate.backends.cpu import CpuInfo, choose_kernels, cpu_info
from rankgate.bench.measure import (
    Deviation,
    deviation,
    int8_peak,
    machine,
    matmul_peak,
    peak_label,
    peak_name,
    peak_shapes,
    request_flops,
)
from rankgate.bench.measure import versions as package_versions
from rankgate.bench.models import BuiltModel, default_model_dir, ensure_model, repo_root
from rankgate.bench.peers import PEER_FUNCTIONS, PeerContext, PeerRun, PeerSkipped, Timing
from rankgate.bench.workload import DEFAULT_SPREAD, Workload, check_spread, token_counter
from rankgate.errors import ConfigError

__all__ = ["DEFAULT_GPU_PEERS", "DEFAULT_PEERS", "PEERS", "CoreOptions", "run_core"]

PEERS = tuple(PEER_FUNCTIONS)
AB_PEERS = ("rankgate-padded", "rankgate-packed", "rankgate-blas")  # packing off / on, MKL
BF16_PEERS = ("rankgate-bf16-mixed", "rankgate-bf16")
DEFAULT_PEERS = tuple(p for p in PEERS if p not in AB_PEERS + BF16_PEERS)
"""On the CPU: every peer but the A/B ones (packing is the CPU default) and the bf16 ones, which
are added on CPUs with bf16 hardware (:func:`default_cpu_peers`)."""
PRECISION = {"rankgate-bf16-mixed": "bf16", "rankgate-bf16": "bf16", "rankgate-int8": "int8"}
"""The precision of each peer's products, whose own peak it is compared with (default fp32)."""
DEFAULT_GPU_PEERS = ("rankgate", "rankgate-packed", "crossencoder", "flag")
"""On a GPU: the fp16 peers, and packing (off by default on CUDA) as an A/B."""
REFERENCE = "rankgate"  # the exact fp32 path: the others' scores are compared with it
FLAG, CROSS = "flag", "crossencoder"


@dataclass(frozen=True)
class CoreOptions:
    """Options of :func:`run_core` (and ``rankgate bench``)."""

    model_dir: Path | None = None
    """Where the model is built or reused (None: :func:`.models.default_model_dir`)."""
    tiny: bool = False
    docs: tuple[int, ...] = (10, 50)
    short: bool = False
    spread: float = DEFAULT_SPREAD
    """Document lengths drawn within target × (1 ± spread); the default, 0.7, mixes short and
    long documents as a real first stage does; :data:`.workload.NARROW_SPREAD` is ±15%."""
    repeats: int = 2
    peers: tuple[str, ...] | None = None
    """None: :data:`DEFAULT_PEERS` on the CPU, :data:`DEFAULT_GPU_PEERS` on a GPU."""
    threads: int = 2
    device: str = "cpu"
    """``cpu`` (fp32) or ``cuda`` / ``cuda:N`` (fp16, against the card's fp16 matmul peak)."""
    flag_python: Path = field(default_factory=lambda: repo_root() / ".venv-flag/bin/python")
    flag_script: Path = field(default_factory=lambda: repo_root() / "scripts/flag_reference.py")
    st_onnx_python: Path = field(default_factory=lambda: repo_root() / ".venv-st-onnx/bin/python")
    """Where ``crossencoder-onnx`` runs when this environment lacks optimum-onnx."""
    peak_seconds: float = 3.0
    out: Path | None = None

    def __post_init__(self) -> None:
        if self.device != "cpu" and not is_cuda(self.device):
            raise ValueError(f"device must be cpu, cuda or cuda:N, not {self.device!r}")
        if self.peers is None:
            chosen = DEFAULT_GPU_PEERS if is_cuda(self.device) else default_cpu_peers()
            object.__setattr__(self, "peers", chosen)
        unknown = [p for p in self.peer_names if p not in PEER_FUNCTIONS]
        if unknown:
            raise ValueError(
                f"unknown peer(s) {', '.join(unknown)}; choose from {', '.join(PEERS)}"
            )
        if not self.docs or min(self.docs) < 1 or self.repeats < 1 or self.threads < 1:
            raise ValueError("docs, repeats and threads must be positive")
        check_spread(self.spread)

    @property
    def peer_names(self) -> tuple[str, ...]:
        """The peers to run (the device's defaults when none were named)."""
        return self.peers or ()


def default_cpu_peers(cpu: CpuInfo | None = None) -> tuple[str, ...]:
    """:data:`DEFAULT_PEERS`, with bf16-mixed, pure bf16 and (where oneDNN is the fp32 pick)
    the MKL A/B peer next to ``rankgate`` on a CPU whose hardware makes them worth timing."""
    kernels = choose_kernels(cpu or cpu_info())
    extra = (("rankgate-blas",) if kernels.fp32_onednn else ()) + (
        BF16_PEERS if kernels.bf16_native else ()
    )
    first, rest = DEFAULT_PEERS[:1], DEFAULT_PEERS[1:]
    return (*first, *extra, *rest)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Library notices and progress bars off while the benchmark runs, as they were after (a
    caller in the same process, a test, keeps its warnings)."""
    import logging

    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    names = ("sentence_transformers", "rankgate", "onnxruntime", "optimum")
    levels = {name: logging.getLogger(name).level for name in names}
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # "Loading weights" bars would interleave with the report
    for name in names:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def run_core(options: CoreOptions, console: Console | None = None) -> dict[str, Any]:
    """Run the library benchmark, print its tables, and return (and optionally save) the report.

    Raises:
        ConfigError: a CUDA device asked for where torch sees none. MissingDependencyError:
        torch or transformers is missing.
    """
    with _quiet():
        return _run_core(options, console)


def _run_core(options: CoreOptions, console: Console | None) -> dict[str, Any]:
    import torch

    console = console or Console(width=max(Console().width, 150))
    started = time.perf_counter()
    torch.set_num_threads(options.threads)
    if is_cuda(options.device) and not torch.cuda.is_available():
        raise ConfigError(f"device {options.device}: this torch sees no CUDA device")
    model = ensure_model(options.model_dir or default_model_dir(options.tiny), tiny=options.tiny)
    count = token_counter(model.path)
    target = 60 if options.short else 280
    workload = Workload.build(tuple(options.docs), target, count, options.spread)
    device = options.device
    host, vers = machine(device), package_versions()
    shapes = peak_shapes(device, model.config)
    peak = matmul_peak(options.peak_seconds, shapes, device=device)
    _print_header(console, model, host, vers, peak, peak_label(device, shapes))
    # Each low-precision peer against its own precision's peak, measured in the same run.
    own_peaks: dict[str, float | None] = {}
    wanted = {PRECISION.get(name, "fp32") for name in options.peer_names}
    if "bf16" in wanted and not is_cuda(device):
        own_peaks["bf16"] = matmul_peak(options.peak_seconds, shapes, precision="bf16")
    if "int8" in wanted and not is_cuda(device):
        own_peaks["int8"] = int8_peak(options.peak_seconds / 2, shapes[1:], options.threads)
    for kind, value in own_peaks.items():
        shown = f"{value:.1f} G{'OP' if kind == 'int8' else 'FLOP'}/s" if value else "n/a"
        how = "onnxruntime MatMulInteger" if kind == "int8" else "torch.matmul and oneDNN"
        console.print(f"[bold]{kind} peak[/] ({how}, best window): {shown}", highlight=False)

    ctx = PeerContext(
        model,
        workload,
        options.repeats,
        options.threads,
        options.flag_python,
        options.flag_script,
        options.st_onnx_python,
        device,
    )
    runs: dict[str, PeerRun] = {}
    skipped: dict[str, str] = {}
    # A short yardstick before each peer: this VM's speed drifts by 10-15% within minutes, and a
    # peer timed in a slow phase should say so.
    speed: dict[str, float] = {}
    for name in options.peer_names:
        speed[name] = matmul_peak(options.peak_seconds / 4, shapes, windows=2, device=device)
        try:
            runs[name] = PEER_FUNCTIONS[name](ctx)
        except PeerSkipped as exc:
            skipped[name] = str(exc)
        gc.collect()  # one 2.3 GB model in memory at a time
    reference = runs.get(REFERENCE)
    deviations = {
        name: deviation(run.deviation_scores, reference.deviation_scores)
        for name, run in runs.items()
        if reference and reference.deviation_scores and run.deviation_scores and name != REFERENCE
    }

    label = workload.label
    report: dict[str, Any] = {
        "machine": host,
        "versions": vers,
        "device": device,
        "peak_kind": peak_label(device, shapes),
        "peak_gflops_start": peak,
        "own_peaks": own_peaks,
        "model_dir": str(model.path),
        "model_config": model.config,
        "tiny": options.tiny,
        "query": workload.query,
        "doc_tokens_target": target,
        "doc_tokens_spread": options.spread,
        "repeats": options.repeats,
        "threads": options.threads,
        "skipped": skipped,
        "notes": {name: run.note for name, run in runs.items() if run.note},
        "deviation_pairs": len(workload.deviation_documents),
        "deviation": {name: asdict(d) for name, d in deviations.items()},
        "workloads": [],
    }
    # Measured again after the peers: the higher of the two is the peak, so that load from
    # other processes at the start does not flatter every %peak.
    peak_end = matmul_peak(options.peak_seconds, shapes, device=device)
    console.print(
        f"\n[bold]{peak_name(device)}[/] again after the peers: "
        f"{peak_end:.1f} GFLOP/s; %peak below uses "
        f"{max(peak, peak_end):.1f}",
        highlight=False,
    )
    report["peak_gflops_end"] = peak_end
    report["peak_gflops_before_peer"] = speed
    console.print(_drift_line(speed), highlight=False)
    peak = report["peak_gflops"] = max(peak, peak_end)
    for n in workload.sizes:
        timings = [run.timings[n] for run in runs.values() if n in run.timings]
        if not timings:
            continue
        doc_tokens = [count(d) for d in workload.docs(n)]
        console.print()
        title = label if device == "cpu" else f"{label}, fp16 on {host['gpu']['name']}"
        console.print(_table(n, timings, model.config, peak, title, deviations, own_peaks))
        console.print(_token_facts(timings, doc_tokens))
        report["workloads"].append(_workload_record(timings, model.config, doc_tokens))
    _print_footer(console, runs, skipped, deviations, options, report, started)
    if options.out:
        import json

        options.out.write_text(json.dumps(report, indent=2))
        console.print(Text(f"wrote {options.out}"))
    return report


def _print_header(
    console: Console,
    model: BuiltModel,
    host: dict[str, Any],
    vers: dict[str, str],
    peak: float,
    label: str,
) -> None:
    how = f"built in {model.build_seconds:.0f} s" if model.build_seconds is not None else "cached"
    cfg = model.config
    console.print(
        f"[bold]machine[/]: {host['cpu']}; {host['cores']} cores ({host['usable_cores']} usable);"
        f" torch threads {host['torch_threads']}; Python {host['python']}; load average "
        f"{host['loadavg'][0]:.2f} at start\n"
        + _cpu_line(host)
        + "[bold]versions[/]: "
        + ", ".join(f"{k} {v}" for k, v in vers.items())
        + "\n"
        + (_gpu_line(host["gpu"]) if "gpu" in host else "")
        + f"[bold]{label}[/]: {peak:.1f} GFLOP/s\n"
        f"[bold]model[/]: {model.path} ({how}); XLM-R {cfg['num_hidden_layers']} layers, "
        f"hidden {cfg['hidden_size']}, vocab {cfg['vocab_size']}; random weights",
        highlight=False,
    )


def _cpu_line(host: dict[str, Any]) -> str:
    if "kernels" not in host:
        return ""
    k = host["kernels"]
    features = ", ".join(host.get("cpu_features") or ()) or "none of AVX2/AVX-512/AMX"
    return (
        f"[bold]cpu features[/]: {features}; kernels: fp32 {k['fp32']}, bf16 {k['bf16']}, "
        f"int8 {k['int8']}\n"
    )


def _gpu_line(gpu: dict[str, Any]) -> str:
    return (
        f"[bold]gpu[/]: {gpu['name']}, {gpu['memory_gib']} GiB, {gpu['multiprocessors']} SMs, "
        f"compute capability {gpu['capability']}, CUDA {gpu['cuda']}; every peer in fp16\n"
    )


def _ratio(a: Timing, b: Timing | None) -> str:
    return f"{a.pairs_per_s / b.pairs_per_s:.2f}×" if b else "n/a"


def model_gflops(t: Timing, config: dict[str, Any]) -> float:
    """Useful model GFLOP/s: FLOPs of the real (unpadded) tokens over the median request time."""
    return request_flops(t.lengths, config) / t.median_s / 1e9


def _table(
    n: int,
    timings: list[Timing],
    config: dict[str, Any],
    peak: float,
    label: str,
    deviations: dict[str, Deviation],
    own_peaks: dict[str, float | None] | None = None,
) -> Table:
    by_name = {t.name: t for t in timings}
    table = Table(title=f"1 query × {n} documents ({label})")
    table.add_column("peer")
    cols: tuple[str, ...] = ("max_len", "pairs/s", "s/req", "×flag", "×CE", "×fp32", "real/comp")
    cols = (*cols, "GFLOP/s", "%peak", "own %pk", "work", "comp %pk", "cpu")
    for col in (*cols, "Δ/spread", "ρ"):
        table.add_column(col, justify="right")
    for t in timings:
        gflops = model_gflops(t, config)
        dev = deviations.get(t.name)
        table.add_row(
            t.name,
            str(t.max_length),
            f"{t.pairs_per_s:.2f}",
            f"{t.median_s:.3f}",
            _ratio(t, by_name.get(FLAG)),
            _ratio(t, by_name.get(CROSS)),
            _ratio(t, by_name.get(REFERENCE)),
            f"{sum(t.lengths) / t.computed_tokens:.1%}",
            f"{gflops:.1f}",
            f"{gflops / peak:.1%}",
            _own_share(t, gflops, peak, own_peaks or {}),
            _work(t, by_name.get(REFERENCE)),
            f"{t.computed_flops / t.median_s / 1e9 / peak:.1%}",
            f"{t.cpu_share:.0%}",
            "ref" if t.name == REFERENCE else (f"{dev.relative:.2%}" if dev else "n/a"),
            "ref" if t.name == REFERENCE else (f"{dev.spearman:.4f}" if dev else "n/a"),
        )
    return table


def _own_share(t: Timing, gflops: float, fp32_peak: float, own: dict[str, float | None]) -> str:
    """Useful GFLOP/s against the peak of the peer's own precision (fp32, bf16, int8)."""
    kind = PRECISION.get(t.name, "fp32")
    value = fp32_peak if kind == "fp32" else own.get(kind)
    return f"{gflops / value:.1%}" if value else "n/a"


def _drift_line(speed: dict[str, float]) -> str:
    """The yardstick before each peer, flagged when the machine's speed moved between them."""
    line = "matmul GFLOP/s just before each peer: " + ", ".join(
        f"{name} {gflops:.1f}" for name, gflops in speed.items()
    )
    if speed and max(speed.values()) > 1.1 * min(speed.values()):
        line += (
            " [yellow](the machine's speed moved by more than 10% between peers: ratios between "
            "them move with it)[/]"
        )
    return line


def _work(t: Timing, reference: Timing | None) -> str:
    """Model FLOPs the peer computed for the request, over what rankgate fp32 computed."""
    return f"{t.computed_flops / reference.computed_flops:.2f}×" if reference else "n/a"


def _token_facts(timings: list[Timing], doc_tokens: list[int]) -> str:
    lengths = timings[0].lengths
    same = all(t.lengths == lengths for t in timings)
    fits = all(max(t.lengths) <= t.max_length for t in timings)
    return (
        f"documents: mean {np.mean(doc_tokens):.1f} tokens (min {min(doc_tokens)}, max "
        f"{max(doc_tokens)}); real tokens per pair (query + document + 4 special): mean "
        f"{np.mean(lengths):.1f}, min {min(lengths)}, max {max(lengths)}"
        + ("; identical for every peer" if same else "; [red]differs between peers[/]")
        + (
            f"; longest pair {max(lengths)} fits every peer's max_length: no truncation."
            if fits
            else "; [red]some peer truncates.[/]"
        )
    )


def _workload_record(
    timings: list[Timing], config: dict[str, Any], doc_tokens: list[int]
) -> dict[str, Any]:
    by_name = {t.name: t for t in timings}

    def ratio(t: Timing, other: str) -> float | None:
        o = by_name.get(other)
        return t.pairs_per_s / o.pairs_per_s if o else None

    return {
        "docs": len(doc_tokens),
        "mean_doc_tokens": float(np.mean(doc_tokens)),
        "mean_pair_tokens": float(np.mean(timings[0].lengths)),
        "results": [
            {
                **asdict(t),
                "median_s": t.median_s,
                "pairs_per_s": t.pairs_per_s,
                "x_flag": ratio(t, FLAG),
                "x_crossencoder": ratio(t, CROSS),
                "real_share": sum(t.lengths) / t.computed_tokens,
                "model_gflops": model_gflops(t, config),
                "computed_gflops": t.computed_flops / t.median_s / 1e9,
                "cpu_share": t.cpu_share,
            }
            for t in timings
        ],
    }


def _print_footer(
    console: Console,
    runs: dict[str, PeerRun],
    skipped: dict[str, str],
    deviations: dict[str, Deviation],
    options: CoreOptions,
    report: dict[str, Any],
    started: float,
) -> None:
    console.print("\n[bold]batching[/] (per call, as each peer does it):")
    for name, run in runs.items():
        first = next(iter(run.timings.values()))
        console.print(f"  {name}: {first.batching}" + (f"; {run.note}" if run.note else ""))
    for name, why in skipped.items():
        console.print(Text(f"{name} skipped: {why}", style="yellow"))
    if deviations:
        pairs = report["deviation_pairs"]
        precision = "fp32" if options.device == "cpu" else "fp16"
        console.print(
            f"\n[bold]deviation[/] from rankgate {precision} on {pairs} fixed pairs (raw logits): "
            + "; ".join(
                f"{name}: max |Δ| {d.max_abs:.2e} = {d.relative:.2%} of the score spread, "
                f"Spearman ρ {d.spearman:.4f}"
                for name, d in deviations.items()
            )
        )
    contended = [
        t
        for run in runs.values()
        for t in run.timings.values()
        if t.cpu_share < 0.9 and options.device == "cpu"  # a GPU peer waits on the card
    ]
    if contended:
        console.print(
            f"\n[yellow]warning: {len(contended)} row(s) got under 90% of their threads' CPU "
            f"(load average now {os.getloadavg()[0]:.2f}): other processes competed for the "
            "cores, so those timings understate the peer; rerun on a quiet machine.[/]"
        )
    elapsed = time.perf_counter() - started
    report["runtime_s"] = elapsed
    console.print(
        f"\nruntime {elapsed:.0f} s. pairs/s = documents / median s per request (s/req; 1 "
        f"warm-up, {options.repeats} timed); ×flag, ×CE, ×fp32 = pairs/s ratios (×fp32: over "
        "rankgate, the exact fp32 path); real/comp = real "
        "tokens / tokens computed incl. padding; GFLOP/s counts real tokens only "
        "(2·P + 4·L·s·H per token), so padding and repeated work lower it; %peak = of the "
        "matmul peak above (fp32 on the CPU, fp16 on a GPU; int8 may exceed it); own %pk = of "
        "the peak of the peer's own precision (bf16 peers: the bf16 peak, int8: the int8 "
        "peak, others: the fp32 one); work = model "
        "FLOPs the peer computed (padding, repeats and rankgate's skipped last-layer work "
        "accounted) over rankgate's; comp %pk = those FLOPs per second against the peak, how "
        "fast the peer runs the arithmetic it does; cpu = process "
        "CPU time / (wall × threads), below ~95% means other load (on a GPU it only shows the "
        "host's share); Δ/spread, ρ = deviation from rankgate (above)."
    )
