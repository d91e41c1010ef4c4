"""Core speed benchmark: rankgate ``Reranker`` against its peers, side by side, in one run.

Peers, all on the same local model (bge-reranker-v2-m3's architecture, random weights) and CPU:

- rankgate ``Reranker.rerank`` (max_length 1024, token-budget batching);
- sentence-transformers ``CrossEncoder.rank`` (max_length 1024, its default batch size);
- FlagEmbedding ``FlagReranker.compute_score`` with its defaults (max_length 512, batches of 128),
  in the reference env ``.venv-flag`` through ``scripts/flag_reference.py --bench``.

One query against N documents of about 280 tokens (``--short``: about 60); one warm-up call, then
``--repeats`` timed calls per peer, median reported. Random weights: this measures speed only.

Usage:
    .venv/bin/python benchmarks/bench_core.py [--docs 10,50] [--repeats 2] [--short] [--out f.json]
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
from benchlib import (
    DEFAULT_MODEL_DIR,
    QUERY,
    ROOT,
    TokenAccount,
    ensure_model,
    fixed_batches,
    machine,
    make_documents,
    matmul_peak,
    median,
    padded_tokens,
    request_flops,
)
from rich.console import Console
from rich.table import Table

MAX_LENGTH = 1024  # rankgate's default and what CrossEncoder is given
FLAG = "FlagReranker"
CROSS = "CrossEncoder"


@dataclass
class Result:
    """One peer on one workload: timed runs and how many tokens it really computed."""

    name: str
    seconds: list[float]
    pairs: int
    lengths: list[int]
    computed_tokens: int | None
    max_length: int
    batching: str
    cpu_seconds: list[float]
    threads: int
    extra: dict = field(default_factory=dict)

    @property
    def median_s(self) -> float:
        return median(self.seconds)

    @property
    def pairs_per_s(self) -> float:
        return self.pairs / self.median_s

    @property
    def cpu_share(self) -> float:
        """CPU time this peer got over what its threads could use (low: other load on the box)."""
        pairs = zip(self.cpu_seconds, self.seconds, strict=True)
        return median([cpu / (wall * self.threads) for cpu, wall in pairs])


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


def bench_rankgate(model_dir: Path, workloads: dict[int, list[str]], args) -> dict[int, Result]:
    """Time ``Reranker.rerank``; padded tokens come from the engine's own batch plan."""
    from rankgate import Reranker
    from rankgate.engine.batching import plan_batches

    rr = Reranker(str(model_dir), device="cpu", max_length=MAX_LENGTH, threads=args.threads)
    size = rr.settings.max_batch_size
    out = {}
    for n, docs in workloads.items():
        lengths = [len(pair) for pair in rr.prepare(QUERY, docs).pairs]
        batches = plan_batches(lengths, rr.batch_tokens, size)
        seconds, cpu_seconds = timed(lambda docs=docs: rr.rerank(QUERY, docs), args.repeats)
        out[n] = Result(
            "rankgate",
            seconds,
            len(docs),
            lengths,
            padded_tokens(lengths, batches),
            rr.max_length,
            f"≤{rr.batch_tokens} padded tokens, ≤{size} pairs, length-sorted",
            cpu_seconds,
            args.threads,
            {"batches": [len(b) for b in batches]},
        )
    return out


def bench_cross_encoder(
    model_dir: Path, workloads: dict[int, list[str]], args
) -> dict[int, Result]:
    """Time ``CrossEncoder.rank`` with its default batch size.

    sentence-transformers 6 sorts the pairs by character count (longest first), cuts consecutive
    batches of ``batch_size`` and pads each to its longest pair (no unpadding for a
    sequence-classification head), which is what the padded-token count replays.
    """
    from sentence_transformers import CrossEncoder

    ce = CrossEncoder(str(model_dir), device="cpu", max_length=MAX_LENGTH)
    default = inspect.signature(ce.rank).parameters["batch_size"].default
    size = default if isinstance(default, int) else 32
    out = {}
    for n, docs in workloads.items():
        enc = ce.tokenizer([QUERY] * n, docs, truncation="longest_first", max_length=MAX_LENGTH)
        lengths = [len(ids) for ids in enc["input_ids"]]
        order = np.argsort([-(len(QUERY) + len(d)) for d in docs])
        seconds, cpu_seconds = timed(lambda docs=docs: ce.rank(QUERY, docs), args.repeats)
        out[n] = Result(
            CROSS,
            seconds,
            n,
            lengths,
            padded_tokens(lengths, fixed_batches(order, size)),
            MAX_LENGTH,
            f"{size} pairs, sorted by characters",
            cpu_seconds,
            args.threads,
        )
    return out


def bench_flag(model_dir: Path, workloads: dict[int, list[str]], args) -> dict[int, Result]:
    """Time ``FlagReranker.compute_score`` (defaults) in the reference env, one process per N.

    FlagEmbedding sorts pairs by token count, pads batches of ``batch_size`` to their longest,
    and first runs the first batch once more as an out-of-memory probe whose result it discards;
    that probe is real work in every call, so it counts as computed tokens.
    """
    python = Path(args.flag_python)
    if not python.exists():
        return {}
    out = {}
    for n, docs in workloads.items():
        request = {
            "model": str(model_dir),
            "pairs": [[QUERY, d] for d in docs],
            "repeats": args.repeats,
            "threads": args.threads,
        }
        proc = subprocess.run(
            [str(python), str(ROOT / "scripts" / "flag_reference.py"), "--bench"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            sys.exit(f"bench_core: flag_reference.py failed:\n{proc.stderr[-3000:]}")
        reply = json.loads(proc.stdout)
        lengths, size = reply["lengths"], reply["batch_size"]
        batches = fixed_batches(np.argsort([-s for s in lengths]), size)
        out[n] = Result(
            FLAG,
            reply["seconds"],
            n,
            lengths,
            padded_tokens(lengths, batches) + padded_tokens(lengths, batches[:1]),
            reply["max_length"],
            f"{size} pairs, sorted by tokens, + 1st batch again (OOM probe)",
            reply["cpu_seconds"],
            reply["threads"],
            {k: reply[k] for k in ("threads", "attn_implementation", "versions")},
        )
    return out


def versions() -> dict[str, str]:
    """Versions of the packages in the main environment."""
    found = {}
    for name in ("rankgate", "torch", "transformers", "sentence-transformers", "tokenizers"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def ratio(a: Result | None, b: Result | None) -> str:
    """``a``'s throughput over ``b``'s, as ``1.23×``."""
    return f"{a.pairs_per_s / b.pairs_per_s:.2f}×" if a and b else "n/a"


def table(n: int, results: list[Result], config: dict, peak: float, label: str) -> Table:
    """One rich table for one workload size; batching is described below it, not in a column."""
    by_name = {r.name: r for r in results}
    t = Table(title=f"1 query × {n} documents ({label})")
    t.add_column("implementation")
    cols = ("max_len", "pairs/s", "s/req", "×Flag", "×CE", "real/comp", "GFLOP/s", "%peak", "cpu")
    for col in cols:
        t.add_column(col, justify="right")
    for r in results:
        gflops = model_gflops(r, config)
        share = TokenAccount(sum(r.lengths), r.computed_tokens).share if r.computed_tokens else None
        t.add_row(
            r.name,
            str(r.max_length),
            f"{r.pairs_per_s:.2f}",
            f"{r.median_s:.2f}",
            ratio(r, by_name.get(FLAG)),
            ratio(r, by_name.get(CROSS)),
            f"{share:.1%}" if share is not None else "n/a",
            f"{gflops:.1f}",
            f"{gflops / peak:.1%}",
            f"{r.cpu_share:.0%}",
        )
    return t


def model_gflops(r: Result, config: dict) -> float:
    """Useful model GFLOP/s: FLOPs of the real (unpadded) tokens over the median request time."""
    return request_flops(r.lengths, config) / r.median_s / 1e9


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", default="10", help="documents per request, e.g. 10 or 10,50")
    p.add_argument("--repeats", type=int, default=2, help="timed calls per peer (after 1 warm-up)")
    p.add_argument("--short", action="store_true", help="~60-token documents instead of ~280")
    p.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR, help="model cache dir")
    p.add_argument("--threads", type=int, default=2, help="torch threads, for every peer")
    p.add_argument("--flag-python", default=str(ROOT / ".venv-flag" / "bin" / "python"))
    p.add_argument("--out", type=Path, help="also write the results as JSON here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print (and optionally save) the results."""
    args = parse_args(argv)
    started = time.perf_counter()
    console = Console(width=max(Console().width, 100))
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # "Loading weights" bars would interleave with the report
    torch.set_num_threads(args.threads)
    sizes = sorted({int(x) for x in args.docs.split(",")})
    target = 60 if args.short else 280
    label = f"~{target}-token documents"

    model_dir, built = ensure_model(args.model_dir.resolve())
    config = json.loads((model_dir / "config.json").read_text())
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))

    def count(text: str) -> int:
        return len(tok.encode(text, add_special_tokens=False).ids)

    all_docs = make_documents(max(sizes), target, count)
    workloads = {n: all_docs[:n] for n in sizes}

    host, vers, peak = machine(), versions(), matmul_peak()
    load = os.getloadavg()
    how = f"built in {built:.0f} s" if built is not None else "cached"
    console.print(
        f"[bold]machine[/]: {host['cpu']}; {host['cores']} cores ({host['usable_cores']} usable);"
        f" torch threads {host['torch_threads']}; Python {host['python']}; load average "
        f"{load[0]:.2f} at start\n"
        "[bold]versions[/]: " + ", ".join(f"{k} {v}" for k, v in vers.items()) + "\n"
        f"[bold]fp32 peak[/] (torch.matmul 2048×2048, ~2 s): {peak:.1f} GFLOP/s\n"
        f"[bold]model[/]: {model_dir} ({how}); XLM-R {config['num_hidden_layers']} layers, "
        f"hidden {config['hidden_size']}, vocab {config['vocab_size']}; random weights"
    )

    runs = []
    for bench in (bench_rankgate, bench_cross_encoder, bench_flag):
        runs.append(bench(model_dir, workloads, args))
        gc.collect()  # one 2.3 GB model in memory at a time
    if runs[2]:
        extra = next(iter(runs[2].values())).extra
        console.print(
            "[bold]reference env[/]: "
            + ", ".join(f"{k} {v}" for k, v in extra["versions"].items())
            + f"; torch threads {extra['threads']}; attention {extra['attn_implementation']}"
        )
    else:
        console.print(
            f"[yellow]FlagReranker skipped: no {args.flag_python} "
            "(build it with scripts/setup-flag-env.sh)[/]"
        )

    report: dict = {
        "machine": {**host, "loadavg_start": load},
        "versions": vers,
        "peak_gflops": peak,
        "model_dir": str(model_dir),
        "query": QUERY,
        "doc_tokens_target": target,
        "repeats": args.repeats,
        "workloads": [],
    }
    for n in sizes:
        results = [run[n] for run in runs if n in run]
        doc_tokens = [count(d) for d in workloads[n]]
        report["workloads"].append(
            print_workload(console, results, config, peak, label, doc_tokens)
        )
    console.print("\n[bold]batching[/] (per call, as each peer does it):")
    for r in (run[sizes[0]] for run in runs if run):
        console.print(f"  {r.name}: {r.batching}")
    contended = [r for run in runs for r in run.values() if r.cpu_share < 0.9]
    if contended:
        console.print(
            f"\n[yellow]warning: {len(contended)} row(s) got under 90% of their threads' CPU "
            f"(load average now {os.getloadavg()[0]:.2f}): other processes competed for the "
            "cores, so those timings understate the peer; rerun on a quiet machine.[/]"
        )
    elapsed = time.perf_counter() - started
    report["runtime_s"] = elapsed
    console.print(
        f"\nruntime {elapsed:.0f} s. pairs/s = documents / median s per request (1 warm-up, "
        f"{args.repeats} timed); ×Flag, ×CE = pairs/s ratios; real/comp = real tokens / tokens "
        "computed incl. padding; GFLOP/s counts real tokens only (2·P + 4·L·s·H per token), so "
        "padding and repeated work lower it; %peak = of the fp32 matmul peak above; cpu = "
        "process CPU time / (wall time × threads), below ~95% means other load on the machine."
    )
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
        console.print(f"wrote {args.out}")
    return 0


def print_workload(
    console: Console,
    results: list[Result],
    config: dict,
    peak: float,
    label: str,
    doc_tokens: list[int],
) -> dict:
    """Print one workload's table and token facts; return its JSON record."""
    n, lengths = len(doc_tokens), results[0].lengths
    console.print()
    console.print(table(n, results, config, peak, label))
    fits = all(max(r.lengths) <= r.max_length for r in results)
    same = all(r.lengths == lengths for r in results)
    console.print(
        f"documents: mean {np.mean(doc_tokens):.1f} tokens (min {min(doc_tokens)}, max "
        f"{max(doc_tokens)}); real tokens per pair (query + document + 4 special): mean "
        f"{np.mean(lengths):.1f}, "
        f"min {min(lengths)}, max {max(lengths)}"
        + ("; identical for every peer" if same else "; [red]differs between peers[/]")
        + (
            f". Longest pair {max(lengths)} fits every max_length (1024 rankgate and "
            "CrossEncoder, 512 FlagReranker's default): no truncation, same work for all."
            if fits
            else ". [red]Some peer truncates.[/]"
        )
    )
    return {
        "docs": n,
        "mean_doc_tokens": float(np.mean(doc_tokens)),
        "mean_pair_tokens": float(np.mean(lengths)),
        "results": [
            {
                **asdict(r),
                "median_s": r.median_s,
                "pairs_per_s": r.pairs_per_s,
                "model_gflops": model_gflops(r, config),
                "cpu_share": r.cpu_share,
            }
            for r in results
        ],
    }


if __name__ == "__main__":
    sys.exit(main())
