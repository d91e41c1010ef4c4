"""Times sentence-transformers ``CrossEncoder.rank`` in another Python environment.

A standalone script (it imports nothing from rankgate), run as ``PYTHON ce_worker.py`` by the
``crossencoder-onnx`` peer when the benchmark's own environment cannot load sentence-transformers'
ONNX backend: that backend needs ``optimum-onnx``, whose releases pin transformers<4.58, so it
runs where transformers 4 lives (FlagEmbedding's ``.venv-flag`` with
``optimum-onnx[onnxruntime]`` added).

    stdin:  {"model": DIR, "backend": "onnx" | "torch", "file_name": "model.onnx" | null,
             "query": Q, "sizes": {"N": [doc, ...]}, "deviation_docs": [doc, ...],
             "repeats": R, "threads": T, "max_length": L}
    stdout: {"timings": {"N": {"seconds": [...], "cpu_seconds": [...], "lengths": [...]}},
             "batch_size": B, "deviation_scores": [...], "versions": {...}}

``--check`` only imports the backend's packages (exit 0 when they import). Logs go to stderr.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _timed(call, repeats: int) -> tuple[list[float], list[float]]:
    call()  # warm-up
    seconds, cpu_seconds = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        call()
        seconds.append(time.perf_counter() - t0)
        cpu_seconds.append(time.process_time() - c0)
    return seconds, cpu_seconds


def _version(version, name: str) -> str:
    try:
        return str(version(name))
    except Exception:  # PackageNotFoundError
        return "not installed"


def main(argv: list[str]) -> int:
    """Run one request from stdin and print the reply (see the module docstring)."""
    if "--check" in argv:
        import optimum.onnxruntime  # noqa: F401
        import sentence_transformers  # noqa: F401

        return 0
    req = json.load(sys.stdin)
    from importlib.metadata import version

    import torch
    from sentence_transformers import CrossEncoder

    torch.set_num_threads(int(req["threads"]))
    kwargs = {}
    if req["backend"] == "onnx":
        kwargs = {"backend": "onnx", "model_kwargs": {"file_name": req["file_name"]}}
    ce = CrossEncoder(req["model"], device="cpu", max_length=int(req["max_length"]), **kwargs)
    default = inspect.signature(ce.rank).parameters["batch_size"].default
    query, timings = req["query"], {}
    for n, docs in req["sizes"].items():
        enc = ce.tokenizer(
            [query] * len(docs), docs, truncation="longest_first", max_length=ce.max_length
        )
        seconds, cpu = _timed(lambda docs=docs: ce.rank(query, docs), int(req["repeats"]))
        timings[n] = {
            "seconds": seconds,
            "cpu_seconds": cpu,
            "lengths": [len(ids) for ids in enc["input_ids"]],
        }
    pairs = [(query, d) for d in req["deviation_docs"]]
    raw = ce.predict(pairs, activation_fn=torch.nn.Identity(), show_progress_bar=False)
    names = ("sentence-transformers", "transformers", "torch", "optimum-onnx", "onnxruntime")
    out = {
        "timings": timings,
        "batch_size": default if isinstance(default, int) else 32,
        "deviation_scores": [float(s) for s in raw.reshape(-1)],
        "versions": {name: _version(version, name) for name in names},
    }
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
