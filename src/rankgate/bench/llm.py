"""The decoder (LLM) reranker benchmark: rankgate against its peers on one causal LM, one run.

``rankgate bench --llm``. The model has Qwen3-Reranker-0.6B's architecture (28 layers, hidden
1024, 16 heads, 8 key/value heads, head_dim 128, intermediate 3072, 151,669-row vocabulary) with
random weights, built once on disk: the figures show speed only. One query against N documents
of about 280 tokens (mixed lengths, :func:`.workload.make_documents`). Peers, every one on the
same model, threads and documents:

- ``rankgate``: the qwen3 recipe; packed passes (real tokens only), the shared prefix once per
  request (its keys and values kept across the request's passes);
- ``rankgate-padded``: the same with ``packed=False``: right-padded passes whose documents
  reuse the prefix's key/value cache;
- ``rankgate-whole``: packed, ``prefix_cache=False``: every pair computed whole;
- ``crossencoder``: sentence-transformers' ``CrossEncoder`` (its ``LogitScore`` path and the
  model's chat template, batches of 16, longest first, left-padded);
- ``flag-llm``: FlagEmbedding's ``FlagLLMReranker`` in its own environment (its gemma-style
  prompt, so its token counts differ from the others'; batches of 16, longest first; the whole
  vocabulary's logits at every position; and, on every call, a trial pass on its longest batch).

Per peer: seconds per request (median), pairs/s, ratios, GFLOP/s of its useful work (real tokens
of its own layout, the shared prefix counted once) and that against the fp32 matmul peak
measured in the same run, and the work column: the FLOPs it computes (padding, repeated
prefixes, vocabulary logits, trial passes), as a multiple of rankgate's.
"""

from __future__ import annotations

import functools
import gc
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rankgate.bench.measure import (
    cpu_share,
    decoder_attention_flops,
    decoder_head_flops,
    decoder_token_flops,
    machine,
    matmul_peak,
    peak_label,
    timed,
    versions,
)
from rankgate.bench.models import repo_root
from rankgate.bench.peers import PeerSkipped, run_worker
from rankgate.bench.workload import DEFAULT_SPREAD, QUERY, check_spread, make_documents
from rankgate.errors import ConfigError

__all__ = ["LLM_PEERS", "QWEN3_06B_ARCH", "LlmOptions", "Work", "run_llm"]

QWEN3_06B_ARCH: dict[str, int | float] = {
    "layers": 28,
    "hidden": 1024,
    "heads": 16,
    "kv_heads": 8,
    "head_dim": 128,
    "intermediate": 3072,
    "vocab_size": 151669,
    "max_positions": 40960,
    "initializer_range": 0.02,
}
TINY_LLM_ARCH: dict[str, int | float] = {
    "layers": 2,
    "hidden": 64,
    "heads": 4,
    "kv_heads": 2,
    "intermediate": 128,
    "initializer_range": 0.2,
}
LLM_PEERS = ("rankgate", "rankgate-padded", "rankgate-whole", "crossencoder", "flag-llm")
PEER_BATCH = 16  # CrossEncoder's and FlagLLMReranker's batch size in this benchmark
FLAG_MAX_LENGTH = 512
FLAG_PROMPT = (
    "Given a query A and a passage B, determine whether the passage contains an answer to the "
    "query by providing a prediction of either 'Yes' or 'No'."
)


@dataclass(frozen=True)
class LlmOptions:
    """Options of :func:`run_llm` (and ``rankgate bench --llm``)."""

    model_dir: Path | None = None
    """Where the model is built or reused (None: benchmarks/.models/ in the repository)."""
    tiny: bool = False
    docs: tuple[int, ...] = (10, 50)
    tokens: int = 280
    spread: float = DEFAULT_SPREAD
    repeats: int = 2
    peers: tuple[str, ...] = LLM_PEERS
    threads: int = 2
    flag_python: Path = field(default_factory=lambda: repo_root() / ".venv-flag/bin/python")
    peak_seconds: float = 3.0
    out: Path | None = None

    def __post_init__(self) -> None:
        unknown = [p for p in self.peers if p not in LLM_PEERS]
        if unknown or not self.peers:
            raise ValueError(
                f"unknown peer(s) {', '.join(unknown) or '(none)'}; choose from "
                f"{', '.join(LLM_PEERS)}"
            )
        if not self.docs or min(self.docs) < 1 or self.repeats < 1 or self.threads < 1:
            raise ValueError("docs, repeats and threads must be positive")
        check_spread(self.spread)


@dataclass
class Work:
    """What a forward pass computes: tokens through the body, attention keys (summed over query
    rows), rows of the whole vocabulary's logits."""

    body_tokens: int = 0
    attention_keys: int = 0
    head_rows: int = 0
    attention: float = 0.0

    def add(self, rows: int, context: int, config: dict[str, Any], head: bool = False) -> None:
        """``rows`` tokens that see ``context`` earlier keys and each other causally."""
        self.body_tokens += rows
        self.attention_keys += rows * context + rows * (rows + 1) // 2
        self.attention += decoder_attention_flops(rows, context, config)
        self.head_rows += rows if head else 0

    def flops(self, config: dict[str, Any]) -> float:
        return (
            decoder_token_flops(config) * self.body_tokens
            + self.attention
            + decoder_head_flops(config) * self.head_rows
        )


@dataclass
class LlmTiming:
    """One peer on one workload."""

    name: str
    docs: int
    seconds: list[float]
    cpu_seconds: list[float] | None
    pair_tokens: int
    useful: Work
    computed: Work
    threads: int

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    def cpu(self) -> float | None:
        if not self.cpu_seconds:
            return None
        return cpu_share(self.seconds, self.cpu_seconds, self.threads)


def default_llm_dir(tiny: bool) -> Path:
    name = "qwen3-tiny" if tiny else "qwen3-reranker-0.6b-arch"
    root = repo_root()
    base = root / "benchmarks" / ".models" if (root / "benchmarks").is_dir() else None
    return (base or Path.home() / ".cache" / "rankgate" / "bench") / name


def ensure_llm(path: Path, tiny: bool, console: Console) -> dict[str, Any]:
    """Build the model at ``path`` unless the one there has the same architecture."""
    from rankgate.testing_llm import build_decoder_model

    arch = TINY_LLM_ARCH if tiny else QWEN3_06B_ARCH
    stamp = path / "rankgate-arch.json"
    if not (stamp.is_file() and json.loads(stamp.read_text()) == arch):
        started = time.perf_counter()
        build_decoder_model(path, "qwen3", **arch)  # type: ignore[arg-type]
        stamp.write_text(json.dumps(arch))
        console.print(f"built {path} in {time.perf_counter() - started:.0f} s", highlight=False)
    return dict(json.loads((path / "config.json").read_text()))


def _prefix_layout(lengths: Sequence[int], shared: int, config: dict[str, Any]) -> Work:
    """Useful work of one query's pairs: the shared prefix once, each rest after it."""
    work = Work()
    work.add(shared, 0, config)
    for n in lengths:
        work.add(n - shared, shared, config)
    return work


def _padded(batches: Sequence[Sequence[int]], config: dict[str, Any], head: str) -> Work:
    """Work of padded batches, each pair at its batch's longest length; ``head``: ``last``
    (vocabulary logits at one position per pair) or ``all`` (at every position)."""
    work = Work()
    for batch in batches:
        width = max(batch)
        for _ in batch:
            work.add(width, 0, config, head=head == "all")
            work.head_rows += 1 if head == "last" else 0
    return work


def _sorted_batches(lengths: Sequence[int], size: int) -> list[list[int]]:
    ordered = sorted(lengths, reverse=True)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def _rankgate_work(rr: Any, pairs: Sequence[Any], config: dict[str, Any]) -> Work:
    """What rankgate's passes compute, from the plan its batcher makes for these pairs."""
    from rankgate.engine.batching import plan_batches

    backend = rr.backend
    lengths = [len(p) for p in pairs]
    sharing = backend.prefix_cache
    shared = [p.shared for p in pairs] if backend.packed and sharing else None
    plan = plan_batches(
        lengths,
        rr.batch_tokens,
        rr.settings.max_batch_size,
        rr.batch_overhead_tokens,
        packed=backend.packed,
        shared=shared,
    )
    work = Work()
    kept = backend.packed and sharing  # packed passes compute the (one) prefix in the first
    for n, batch in enumerate(plan):
        chosen = [pairs[i] for i in batch]
        p = chosen[0].shared if sharing and (kept or len(chosen) > 1) else 0
        if p and (n == 0 or not kept):
            work.add(p, 0, config)
        rests = [len(c) - p for c in chosen]
        if backend.packed or len(chosen) == 1:
            for r in rests:
                work.add(r, p, config)
        else:
            width = max(rests)
            for _ in rests:
                work.add(width, p, config)
    return work


def _flag_lengths(model_dir: Path, docs: Sequence[str]) -> tuple[list[int], int]:
    """Token counts of FlagLLMReranker's pairs (BOS, ``A: q``, ``\\n``, ``B: p``, ``\\n``,
    prompt; the passage cut to fit its max_length) and the prefix they share."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))

    def n(text: str) -> int:
        return len(tok.encode(text, add_special_tokens=False).ids)

    query = min(n("A: " + QUERY), FLAG_MAX_LENGTH * 3 // 4)
    fixed = n("\n") * 2 + n(FLAG_PROMPT)
    shared = 1 + query + n("\n")
    lengths = [1 + query + fixed + min(n("B: " + d), FLAG_MAX_LENGTH - query) for d in docs]
    return lengths, shared


def run_llm(options: LlmOptions, console: Console | None = None) -> dict[str, Any]:
    """Run the LLM benchmark, print a table per workload, return (and optionally save) it.

    Raises:
        ConfigError: the model directory cannot be built or loaded.
    """
    import torch
    from transformers.utils import logging as hf_logging

    from rankgate.bench.workload import token_counter

    console = console or Console(width=max(Console().width, 150))
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    started = time.perf_counter()
    torch.set_num_threads(options.threads)
    model_dir = options.model_dir or default_llm_dir(options.tiny)
    try:
        config = ensure_llm(model_dir, options.tiny, console)
    except OSError as exc:
        raise ConfigError(f"cannot build the benchmark model in {model_dir}: {exc}") from exc
    count = token_counter(model_dir)
    docs = {
        n: make_documents(n, options.tokens, count, spread=options.spread) for n in options.docs
    }
    hidden = config["hidden_size"]
    shapes = [(2048, 2048, 2048), (4096, hidden, config["intermediate_size"])]
    shapes.append((4096, config["intermediate_size"], hidden))
    peak = matmul_peak(options.peak_seconds, shapes)
    host = machine("cpu")
    console.print(
        f"[bold]machine[/]: {host['cpu']}; {host['usable_cores']} usable cores; "
        f"{options.threads} threads\n[bold]versions[/]: "
        + ", ".join(f"{k} {v}" for k, v in versions().items())
        + f"\n[bold]{peak_label('cpu', shapes)}[/]: {peak:.1f} GFLOP/s\n[bold]model[/]: "
        f"{model_dir}: Qwen3ForCausalLM, {config['num_hidden_layers']} layers, hidden {hidden}, "
        f"vocab {config['vocab_size']}; random weights",
        highlight=False,
    )
    timings: dict[int, list[LlmTiming]] = {n: [] for n in options.docs}
    skipped: dict[str, str] = {}
    for peer in options.peers:
        try:
            for timing in _PEERS[peer](options, model_dir, config, docs):
                timings[timing.docs].append(timing)
        except PeerSkipped as exc:
            skipped[peer] = str(exc)
        gc.collect()
    peak = max(peak, matmul_peak(options.peak_seconds, shapes))
    report: dict[str, Any] = {
        "machine": host,
        "versions": versions(),
        "peak_gflops": peak,
        "model_config": config,
        "threads": options.threads,
        "repeats": options.repeats,
        "skipped": skipped,
        "workloads": [],
    }
    for n in options.docs:
        console.print()
        console.print(_table(n, timings[n], config, peak, options))
        report["workloads"].append(
            {"docs": n, "results": [_record(t, config, peak) for t in timings[n]]}
        )
    for name, why in skipped.items():
        console.print(Text(f"{name} skipped: {why}", style="yellow"))
    console.print(
        f"\nruntime {time.perf_counter() - started:.0f} s; peak above = the higher of the "
        "fp32 matmul peaks measured before and after the peers. pairs/s = documents / median "
        f"s per request (1 warm-up on the first size, {options.repeats} timed); useful GFLOP/s "
        "= FLOPs of the peer's real tokens, its shared prefix counted once (2 per body weight "
        "+ causal attention), over the request time; work = FLOPs the peer computes (padding, "
        "repeated prefixes, vocabulary logits, trial passes) over rankgate's; comp %pk = "
        "those per second against the peak; cpu = process CPU time / (wall × threads).",
        highlight=False,
    )
    if options.out:
        options.out.write_text(json.dumps(report, indent=2))
        console.print(Text(f"wrote {options.out}"))
    return report


PeerFn = Callable[[LlmOptions, Path, dict[str, Any], dict[int, list[str]]], list[LlmTiming]]


def _fresh_request(rr: Any, texts: list[str]) -> Any:
    """One request as a new query's: no prefix kept from the timing before."""
    rr.backend.forget_prefixes()
    return rr.rerank(QUERY, texts)


def _rankgate_peer(packed: bool, prefix_cache: bool, name: str) -> PeerFn:
    def run(
        options: LlmOptions, model_dir: Path, config: dict[str, Any], docs: dict[int, list[str]]
    ) -> list[LlmTiming]:
        from rankgate import Reranker

        rr = Reranker(
            str(model_dir),
            device="cpu",
            threads=options.threads,
            packed=packed,
            prefix_cache=prefix_cache,
        )
        out = []
        for i, (n, texts) in enumerate(docs.items()):
            pairs = rr.prepare(QUERY, texts).pairs
            lengths = [len(p) for p in pairs]
            call = functools.partial(_fresh_request, rr, texts)
            seconds, cpu = timed(call, options.repeats, i == 0)
            out.append(
                LlmTiming(
                    name,
                    n,
                    seconds,
                    cpu,
                    sum(lengths),
                    _prefix_layout(lengths, pairs[0].shared, config),
                    _rankgate_work(rr, pairs, config),
                    options.threads,
                )
            )
        return out

    return run


def _crossencoder(
    options: LlmOptions, model_dir: Path, config: dict[str, Any], docs: dict[int, list[str]]
) -> list[LlmTiming]:
    from sentence_transformers import CrossEncoder

    from rankgate import Reranker

    ce = CrossEncoder(str(model_dir), device="cpu")
    # CrossEncoder's pairs are the qwen3 recipe's (the parity tests hold the scores equal), so
    # their lengths come from rankgate's layout; the model is loaded once for that.
    layout = Reranker(str(model_dir), device="cpu", threads=options.threads)
    out = []
    for i, (n, texts) in enumerate(docs.items()):
        pairs = layout.prepare(QUERY, texts).pairs
        lengths = [len(p) for p in pairs]
        call = functools.partial(ce.predict, [(QUERY, d) for d in texts], batch_size=PEER_BATCH)
        seconds, cpu = timed(call, options.repeats, i == 0)
        computed = _padded(_sorted_batches(lengths, PEER_BATCH), config, head="last")
        useful = _prefix_layout(lengths, pairs[0].shared, config)
        out.append(
            LlmTiming(
                "crossencoder", n, seconds, cpu, sum(lengths), useful, computed, options.threads
            )
        )
    return out


def _flag(
    options: LlmOptions, model_dir: Path, config: dict[str, Any], docs: dict[int, list[str]]
) -> list[LlmTiming]:
    python = options.flag_python
    if not python.exists():
        raise PeerSkipped(f"no {python} (scripts/setup-flag-env.sh builds it)")
    request = {
        "model": str(model_dir),
        "workloads": [[[QUERY, d] for d in texts] for texts in docs.values()],
        "max_length": FLAG_MAX_LENGTH,
        "batch_size": PEER_BATCH,
        "repeats": options.repeats,
        "threads": options.threads,
    }
    script = repo_root() / "scripts" / "flag_llm_reference.py"
    reply = run_worker([str(python), str(script), "--bench"], request, "FlagLLMReranker")
    out = []
    for (n, texts), seconds, cpu in zip(docs.items(), reply["seconds"], reply["cpu"], strict=True):
        lengths, shared = _flag_lengths(model_dir, texts)
        batches = _sorted_batches(lengths, PEER_BATCH)
        # every call first runs its longest batch once to find a batch size that fits
        computed = _padded([batches[0], *batches], config, head="all")
        useful = _prefix_layout(lengths, shared, config)
        out.append(
            LlmTiming("flag-llm", n, seconds, cpu, sum(lengths), useful, computed, options.threads)
        )
    return out


_PEERS: dict[str, PeerFn] = {
    "rankgate": _rankgate_peer(packed=True, prefix_cache=True, name="rankgate"),
    "rankgate-padded": _rankgate_peer(packed=False, prefix_cache=True, name="rankgate-padded"),
    "rankgate-whole": _rankgate_peer(packed=True, prefix_cache=False, name="rankgate-whole"),
    "crossencoder": _crossencoder,
    "flag-llm": _flag,
}


def _ratio(t: LlmTiming, other: LlmTiming | None) -> str:
    return f"{other.median_s / t.median_s:.2f}×" if other else "n/a"


def _table(
    n: int, timings: list[LlmTiming], config: dict[str, Any], peak: float, options: LlmOptions
) -> Table:
    by_name = {t.name: t for t in timings}
    reference = by_name.get("rankgate")
    table = Table(
        title=f"1 query × {n} documents of ~{options.tokens} tokens (±{options.spread:.0%}), "
        f"fp32, {options.threads} threads"
    )
    for col in ("peer", "pairs/s", "s/req", "×CE", "×flag", "tokens", "useful GF/s", "%peak"):
        table.add_column(col, justify="left" if col == "peer" else "right")
    for col in ("work", "comp %pk", "cpu"):
        table.add_column(col, justify="right")
    ref_flops = reference.computed.flops(config) if reference else None
    for t in timings:
        useful = t.useful.flops(config) / t.median_s / 1e9
        computed = t.computed.flops(config)
        share = t.cpu()
        table.add_row(
            t.name,
            f"{n / t.median_s:.3f}",
            f"{t.median_s:.2f}",
            _ratio(t, by_name.get("crossencoder")),
            _ratio(t, by_name.get("flag-llm")),
            str(t.pair_tokens),
            f"{useful:.1f}",
            f"{useful / peak:.1%}",
            f"{computed / ref_flops:.2f}×" if ref_flops else "n/a",
            f"{computed / t.median_s / 1e9 / peak:.1%}",
            f"{share:.0%}" if share is not None else "n/a",
        )
    return table


def _record(t: LlmTiming, config: dict[str, Any], peak: float) -> dict[str, Any]:
    useful = t.useful.flops(config)
    computed = t.computed.flops(config)
    return {
        "peer": t.name,
        "seconds": t.seconds,
        "median_s": t.median_s,
        "pairs_per_s": t.docs / t.median_s,
        "pair_tokens": t.pair_tokens,
        "useful_tokens": t.useful.body_tokens,
        "computed_tokens": t.computed.body_tokens,
        "useful_gflops": useful / t.median_s / 1e9,
        "useful_share_of_peak": useful / t.median_s / 1e9 / peak,
        "computed_gflop": computed / 1e9,
        "cpu_share": t.cpu(),
    }
