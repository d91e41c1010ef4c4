"""Decoder (LLM) rerankers side by side in one run: rankgate against its peers on one model.

    .venv/bin/python benchmarks/bench_llm.py --docs 10 --repeats 2
    .venv/bin/python benchmarks/bench_llm.py --tiny --docs 4 --repeats 1   # a quick check

The model has Qwen3-Reranker-0.6B's architecture (28 layers, hidden 1024, 16 heads, 8 KV heads,
head_dim 128, intermediate 3072, a 151,669-row vocabulary) with random weights, built once under
benchmarks/.models/: the figures show speed only. One query and documents of about 280 tokens
(±70%, rankgate.bench.workload). Peers:

- ``rankgate``: the qwen3 recipe, shared prefix reused, label rows of the LM head only;
- ``rankgate-whole``: the same with ``prefix_cache=False`` (every pair whole);
- ``crossencoder``: sentence-transformers' CrossEncoder (LogitScore, the model's chat template);
- ``flag-llm``: FlagEmbedding's FlagLLMReranker in .venv-flag (its own gemma-style prompt, so
  its token counts differ; same model and weights).

Printed per peer: seconds per request (median), pairs/s, the ratios, and for rankgate the share
of the fp32 matmul peak (measured in the same run) its real tokens reach, the shared prefix
counted once. Not a test: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QWEN3_06B = dict(
    layers=28,
    hidden=1024,
    heads=16,
    kv_heads=8,
    head_dim=128,
    intermediate=3072,
    vocab_size=151669,
    max_positions=40960,
    initializer_range=0.02,
)
TINY = dict(layers=2, hidden=64, heads=4, kv_heads=2, intermediate=128, initializer_range=0.2)


def ensure_model(tiny: bool) -> Path:
    from rankgate.testing_llm import build_decoder_model

    arch = TINY if tiny else QWEN3_06B
    out = ROOT / "benchmarks" / ".models" / ("qwen3-tiny" if tiny else "qwen3-reranker-0.6b-arch")
    stamp = out / "rankgate-arch.json"
    if not (stamp.is_file() and json.loads(stamp.read_text()) == arch):
        started = time.perf_counter()
        build_decoder_model(out, "qwen3", **arch)  # type: ignore[arg-type]
        stamp.write_text(json.dumps(arch))
        print(f"built {out} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return out


def body_flops_per_token(config: dict[str, int]) -> float:
    """2 × the decoder body's matrix parameters (attention projections and the MLP)."""
    h, layers = config["hidden_size"], config["num_hidden_layers"]
    heads, kv = config["num_attention_heads"], config["num_key_value_heads"]
    d = config.get("head_dim") or h // heads
    per_layer = h * heads * d * 2 + h * kv * d * 2 + 3 * h * config["intermediate_size"]
    return 2.0 * layers * per_layer


def attention_flops(length: int, start: int, config: dict[str, int]) -> float:
    """Scores and weighted sums of tokens start..length-1 over their causal context."""
    heads = config["num_attention_heads"]
    d = config.get("head_dim") or config["hidden_size"] // heads
    context = sum(range(start + 1, length + 1))
    return 4.0 * config["num_hidden_layers"] * heads * d * context


def timed(call, repeats: int) -> list[float]:  # type: ignore[no-untyped-def]
    call()  # warm-up
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, nargs="+", default=[10])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=280)
    parser.add_argument("--peers", default="rankgate,rankgate-whole,crossencoder,flag-llm")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()

    import torch

    from rankgate import Reranker
    from rankgate.bench.measure import machine, matmul_peak
    from rankgate.bench.workload import QUERY, make_documents, token_counter

    torch.set_num_threads(args.threads)
    model_dir = ensure_model(args.tiny)
    config = json.loads((model_dir / "config.json").read_text())
    peers = args.peers.split(",")
    peak = matmul_peak(shapes=[(2048, 2048, 2048), (4096, 1024, 3072), (4096, 3072, 1024)])
    cpu = machine("cpu")
    print(
        f"CPU: {cpu.get('cpu', '?')}, {args.threads} threads; fp32 matmul peak {peak:.1f} GFLOP/s"
    )
    report: dict[str, object] = {"machine": cpu, "peak_gflops": peak, "config": config, "runs": []}
    for n in args.docs:
        docs = make_documents(n, args.tokens, token_counter(model_dir))
        pairs = [(QUERY, d) for d in docs]
        results: dict[str, float] = {}
        flops_real = 0.0
        for peer in peers:
            if peer in ("rankgate", "rankgate-whole"):
                rr = Reranker(
                    str(model_dir),
                    device="cpu",
                    threads=args.threads,
                    prefix_cache=(peer == "rankgate"),
                )
                seconds = timed(lambda rr=rr, pairs=pairs: rr.compute_score(pairs), args.repeats)
                if peer == "rankgate":
                    built = rr.prepare(QUERY, docs).pairs
                    shared = built[0].shared
                    real = shared + sum(len(p) - shared for p in built)
                    flops_real = (
                        body_flops_per_token(config) * real
                        + sum(attention_flops(len(p), shared, config) for p in built)
                        + attention_flops(shared, 0, config)
                    )
                    results["real_tokens"] = real
                    results["pair_tokens"] = sum(len(p) for p in built)
            elif peer == "crossencoder":
                from sentence_transformers import CrossEncoder

                ce = CrossEncoder(str(model_dir), device="cpu")
                seconds = timed(
                    lambda ce=ce, pairs=pairs: ce.predict(pairs, batch_size=16), args.repeats
                )
            elif peer == "flag-llm":
                python = ROOT / ".venv-flag" / "bin" / "python"
                if not python.exists():
                    print("flag-llm: no .venv-flag (make flag-env); skipped", file=sys.stderr)
                    continue
                request = {
                    "model": str(model_dir),
                    "pairs": pairs,
                    "max_length": 512,
                    "repeats": args.repeats,
                    "threads": args.threads,
                }
                done = subprocess.run(
                    [str(python), str(ROOT / "scripts" / "flag_llm_reference.py"), "--bench"],
                    input=json.dumps(request),
                    capture_output=True,
                    text=True,
                    check=True,
                )
                seconds = json.loads(done.stdout)["seconds"]
            else:
                raise SystemExit(f"unknown peer {peer!r}")
            results[peer] = statistics.median(seconds)
        ce_s, flag_s = results.get("crossencoder"), results.get("flag-llm")
        print(f"\n1 query x {n} documents of ~{args.tokens} tokens (±70%)")
        print(f"{'peer':16} {'s/request':>10} {'pairs/s':>8} {'x CE':>6} {'x Flag':>7}")
        for peer in peers:
            if peer not in results:
                continue
            s = results[peer]
            ratio_ce = f"{ce_s / s:.2f}" if ce_s else "-"
            ratio_flag = f"{flag_s / s:.2f}" if flag_s else "-"
            print(f"{peer:16} {s:10.2f} {n / s:8.2f} {ratio_ce:>6} {ratio_flag:>7}")
        if "rankgate" in results:
            achieved = flops_real / results["rankgate"] / 1e9
            print(
                f"rankgate: {results['real_tokens']:.0f} real tokens (shared prefix once) of "
                f"{results['pair_tokens']:.0f} in its pairs; {achieved:.1f} GFLOP/s on them = "
                f"{100 * achieved / peak:.1f}% of the fp32 peak"
            )
        report["runs"].append({"docs": n, "seconds": results})  # type: ignore[union-attr]
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
