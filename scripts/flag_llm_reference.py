"""Reference scores from FlagEmbedding 1.4.2's FlagLLMReranker (bge-reranker-v2-gemma's own class).

Run under the reference env (scripts/setup-flag-env.sh):

    .venv-flag/bin/python scripts/flag_llm_reference.py < request.json
        request: {"model": DIR, "max_length": N, "batch_size": N,
                  "cases": [{"pairs": [[q, p], ...], "prompt": str | null}, ...]}
        reply:   {"results": [{"scores": [...], "normalized": [...]}, ...]}

    .venv-flag/bin/python scripts/flag_llm_reference.py --bench < request.json
        request: {"model": DIR, "workloads": [[[q, p], ...], ...], "max_length": N,
                  "batch_size": N, "repeats": R, "threads": N}
        reply:   {"seconds": [[...], ...], "cpu": [[...], ...]} per workload, wall and process
                 CPU seconds (one untimed warm-up call on the first workload)

FlagLLMReranker adds its own "A: " / "B: " to each query and passage, a BOS token, the "\\n"
separators and the prompt (the default one when "prompt" is null), and reads the logit of "Yes"
at the last position. Only JSON goes to stdout; logs and progress bars go to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
warnings.filterwarnings("ignore")


def main() -> int:
    req = json.load(sys.stdin)
    if req.get("threads"):
        import torch

        torch.set_num_threads(int(req["threads"]))
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    from FlagEmbedding import FlagLLMReranker

    reranker = FlagLLMReranker(
        req["model"],
        use_fp16=False,
        devices="cpu",  # one device: no multiprocessing pool
        max_length=int(req.get("max_length", 512)),
        batch_size=int(req.get("batch_size", 16)),
    )
    if "--bench" in sys.argv[1:]:
        import time

        seconds, cpu = [], []
        for i, workload in enumerate(req["workloads"]):
            pairs = [[str(q), str(p)] for q, p in workload]
            if i == 0:
                reranker.compute_score(pairs)  # warm-up, once per process
            wall, used = [], []
            for _ in range(int(req.get("repeats", 2))):
                started, cpu_started = time.perf_counter(), time.process_time()
                reranker.compute_score(pairs)
                wall.append(time.perf_counter() - started)
                used.append(time.process_time() - cpu_started)
            seconds.append(wall)
            cpu.append(used)
        sys.stdout.write(json.dumps({"seconds": seconds, "cpu": cpu}) + "\n")
        return 0
    results = []
    for case in req["cases"]:
        pairs = [[str(q), str(p)] for q, p in case["pairs"]]
        kwargs = {"prompt": case["prompt"]} if case.get("prompt") else {}
        raw = reranker.compute_score(pairs, normalize=False, **kwargs)
        normalized = reranker.compute_score(pairs, normalize=True, **kwargs)
        results.append(
            {"scores": [float(x) for x in raw], "normalized": [float(x) for x in normalized]}
        )
    sys.stdout.write(json.dumps({"results": results}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
