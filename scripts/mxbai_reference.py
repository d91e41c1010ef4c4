"""Reference scores from mxbai-rerank 0.1.6's MxbaiRerankV2 (mxbai-rerank-v2's own class).

Run under the reference env (scripts/setup-flag-env.sh):

    .venv-flag/bin/python scripts/mxbai_reference.py < request.json
        request: {"model": DIR, "max_length": N,
                  "cases": [{"pairs": [[q, d], ...], "instruction": str | null}, ...]}
        reply:   {"results": [{"scores": [...], "normalized": [...]}, ...]}

Only JSON goes to stdout; logs go to stderr.
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
    import torch
    from mxbai_rerank import MxbaiRerankV2

    reranker = MxbaiRerankV2(
        req["model"],
        device="cpu",
        torch_dtype=torch.float32,
        max_length=int(req.get("max_length", 8192)),
        disable_transformers_warnings=True,
    )
    results = []
    for case in req["cases"]:
        queries = [str(q) for q, _ in case["pairs"]]
        documents = [str(d) for _, d in case["pairs"]]
        out = {}
        for key, normalize in (("scores", False), ("normalized", True)):
            scores = reranker.predict(
                queries, documents, instruction=case.get("instruction"), normalize=normalize
            )
            out[key] = [float(x) for x in scores]
        results.append(out)
    sys.stdout.write(json.dumps({"results": results}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
