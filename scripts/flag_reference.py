"""Reference scores / timings from FlagEmbedding 1.4.2's FlagReranker.

Run under the reference env (scripts/setup-flag-env.sh):

    .venv-flag/bin/python scripts/flag_reference.py < request.json
        request: {"model": DIR, "pairs": [[q, p], ...], "max_length": N,
                  "batch_size": N, "normalize": bool}
        reply:   {"scores": [...]}

    .venv-flag/bin/python scripts/flag_reference.py --bench < request.json
        request: {"model": DIR, "pairs": [[q, p], ...], "max_length": N,
                  "batch_size": N | null, "repeats": R}
        reply:   {"seconds": [...], "cpu_seconds": [...], "pairs": n,
                  "lengths": [...], "batch_size": n,
                  "max_length": n, "threads": n, "attn_implementation": str,
                  "versions": {package: version}}
        (batch_size null = FlagReranker's default of 128; one untimed warm-up
        call precedes the R timed compute_score calls; "lengths" are the
        per-pair token counts FlagEmbedding feeds the model; "cpu_seconds" is
        this process's CPU time per timed call, to spot contention)

    --inputs (debug/test aid): reply {"input_ids": [[...], ...]}, the exact
    per-pair ids FlagEmbedding feeds the model (before sorting/padding).

Optional request keys: "query_max_length" (default: max_length * 3 // 4 inside
FlagEmbedding), "threads" (torch.set_num_threads), "device" (default "cpu"; e.g.
"cuda:0") and "use_fp16" (FlagReranker's own switch; ignored by it on the CPU).
The --bench reply also says the "dtype" the model ran in.

The model dir's tokenizer_config.json must say
"tokenizer_class": "XLMRobertaTokenizerFast" (a transformers-5 save says
"XLMRobertaTokenizer", and transformers 4 then builds pairs without <s>/</s>).
This script refuses to score when the pair ids lack <s>..</s>.

Only JSON goes to stdout; logs and progress bars go to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
warnings.filterwarnings("ignore")


def _load(req: dict):
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    from FlagEmbedding import FlagReranker

    kwargs = {
        # FlagEmbedding forces fp16 off on the CPU itself; on a GPU the caller asks for it.
        "use_fp16": bool(req.get("use_fp16", False)),
        "devices": str(req.get("device", "cpu")),  # one device -> no multiprocessing pool
        "max_length": int(req.get("max_length", 512)),
        "normalize": bool(req.get("normalize", False)),
    }
    if req.get("batch_size") is not None:
        kwargs["batch_size"] = int(req["batch_size"])
    if req.get("query_max_length") is not None:
        kwargs["query_max_length"] = int(req["query_max_length"])
    return FlagReranker(req["model"], **kwargs)


def _pair_inputs(reranker, pairs) -> list[list[int]]:
    """Replicates the tokenization part of BaseReranker.compute_score_single_gpu."""
    from FlagEmbedding.utils.tokenizer_compat import prepare_for_model_compat

    tok = reranker.tokenizer
    max_length = reranker.max_length
    qmax = reranker.query_max_length
    if qmax is None:
        qmax = max_length * 3 // 4
    plain = {"add_special_tokens": False, "truncation": True}
    q_ids = tok([p[0] for p in pairs], max_length=qmax, **plain)["input_ids"]
    p_ids = tok([p[1] for p in pairs], max_length=max_length, **plain)["input_ids"]
    return [
        list(
            prepare_for_model_compat(
                tok, q, d, truncation="only_second", max_length=max_length, padding=False
            )["input_ids"]
        )
        for q, d in zip(q_ids, p_ids, strict=True)
    ]


def _check_specials(reranker, pairs) -> None:
    tok = reranker.tokenizer
    ids = _pair_inputs(reranker, pairs[:1])[0]
    cls_id, sep_id = tok.cls_token_id, tok.sep_token_id
    if not (ids and ids[0] == cls_id and ids[-1] == sep_id and ids.count(sep_id) >= 3):
        sys.exit(
            f"flag_reference: tokenizer {type(tok).__name__} builds pairs without "
            f'<s>/</s> (ids={ids[:8]}...); set "tokenizer_class": '
            f'"XLMRobertaTokenizerFast" in tokenizer_config.json'
        )


def _pairs(req: dict) -> list[list[str]]:
    pairs = [[str(q), str(p)] for q, p in req["pairs"]]
    if not pairs:
        sys.exit("flag_reference: no pairs")
    return pairs


def _bench_facts(reranker, pairs) -> dict:
    """What a benchmark needs to account for the timed calls: lengths, batching, versions."""
    from importlib.metadata import version

    import torch

    return {
        "lengths": [len(ids) for ids in _pair_inputs(reranker, pairs)],
        "batch_size": int(reranker.batch_size),
        "max_length": int(reranker.max_length),
        "threads": torch.get_num_threads(),
        "dtype": str(next(reranker.model.parameters()).dtype).removeprefix("torch."),
        "attn_implementation": getattr(reranker.model.config, "_attn_implementation", None),
        "versions": {name: version(name) for name in ("FlagEmbedding", "transformers", "torch")},
    }


def main(argv: list[str]) -> int:
    req = json.load(sys.stdin)
    if req.get("threads"):
        import torch

        torch.set_num_threads(int(req["threads"]))
    reranker = _load(req)
    pairs = _pairs(req)
    _check_specials(reranker, pairs)

    if "--inputs" in argv:
        out: dict = {"input_ids": _pair_inputs(reranker, pairs)}
    elif "--bench" in argv:
        repeats = int(req.get("repeats", 3))
        reranker.compute_score(pairs)  # warm-up
        seconds, cpu_seconds = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            reranker.compute_score(pairs)
            seconds.append(time.perf_counter() - t0)
            cpu_seconds.append(time.process_time() - c0)
        out = {
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "pairs": len(pairs),
            **_bench_facts(reranker, pairs),
        }
    else:
        scores = reranker.compute_score(pairs)
        out = {"scores": [float(s) for s in scores]}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
