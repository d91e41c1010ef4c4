"""Where bf16's score error comes from: the packed fp32 forward against bf16 variants of its
linear layers, on the same pairs (numerics only; the variants that no CPU kernel offers through
torch are emulated in fp32, so their time means nothing).

Variants, each a packed forward of bge-reranker-v2-m3's architecture (random weights):
- ``bf16-mixed``: rankgate's path: bf16 inputs and weights, the product's output rounded to bf16,
  the residual stream, norms and head in fp32;
- ``bf16 inputs, fp32 output``: the same products without rounding their outputs;
- ``activations in two bf16 parts``: x = hi + lo, both multiplied by the bf16 weights, fp32 sum;
- ``weights in two bf16 parts``: the same split for the weights instead;
- ``bf16x3``: hi·hi + hi·lo + lo·hi, the three-product emulation of fp32;
- ``pure bfloat16``: the whole model in bf16, for scale.

Usage:
    .venv/bin/python benchmarks/bf16_error_sources.py [--pairs 12] [--tiny]
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from rankgate.backends.torch_backend import TorchBackend
from rankgate.bench.models import default_model_dir, ensure_model
from rankgate.bench.workload import Workload, token_counter


def _split(t: Any) -> tuple[Any, Any]:
    hi = t.float().to(torch.bfloat16).float()
    return hi, (t.float() - hi).to(torch.bfloat16).float()


def _emulated(parts: Callable[[Any, Any], list[tuple[Any, Any]]]) -> Callable[[Any, Any], Any]:
    def call(module: Any, x: Any) -> Any:
        y = sum(torch.nn.functional.linear(a, w) for a, w in parts(x, module.weight.detach()))
        return y + module.bias.detach()

    return call


VARIANTS: dict[str, Callable[[Any, Any], Any] | None] = {
    "bf16-mixed": None,  # rankgate's own bf16-mixed Linears
    "bf16 inputs, fp32 output": _emulated(lambda x, w: [(_split(x)[0], _split(w)[0])]),
    "activations in two bf16 parts": _emulated(
        lambda x, w: [(part, _split(w)[0]) for part in _split(x)]
    ),
    "weights in two bf16 parts": _emulated(
        lambda x, w: [(_split(x)[0], part) for part in _split(w)]
    ),
    "bf16x3": _emulated(
        lambda x, w: [
            (_split(x)[0], _split(w)[0]),
            (_split(x)[1], _split(w)[0]),
            (_split(x)[0], _split(w)[1]),
        ]
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--tiny", action="store_true", help="the 2-layer model (seconds)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = ensure_model(default_model_dir(args.tiny), tiny=args.tiny)
    work = Workload.build((args.pairs,), 280, token_counter(model.path))
    backend = TorchBackend(
        model.path, model_id="m", device="cpu", dtype="float32", bf16_probe=False
    )
    query = backend.tokenize([work.query])[0]
    docs = backend.tokenize(list(work.deviation_documents[: args.pairs]))
    pairs = [backend.template.build(query, d) for d in docs]
    exact = backend.forward(pairs)
    spread = float(exact.max() - exact.min())
    print(f"{len(pairs)} pairs, fp32 score spread {spread:.4g} (raw logits)")
    rows = []
    for name, call in VARIANTS.items():
        encoder = backend._packed_encoder(bf16=True)
        if call is not None:
            encoder.linears = call
        with torch.inference_mode():
            got = encoder.forward(pairs).float().numpy()
        rows.append((name, float(np.abs(got - exact).max())))
        del encoder
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pure = TorchBackend(model.path, model_id="m", device="cpu", dtype="bfloat16")
    rows.append(("pure bfloat16", float(np.abs(pure.forward(pairs) - exact).max())))
    worst = rows[-1][1]
    print(f"{'variant':32s} {'max |Δ|':>10s} {'Δ/spread':>9s} {'× pure bf16':>11s}")
    for name, delta in rows:
        print(f"{name:32s} {delta:10.3g} {delta / spread:9.2%} {delta / worst:10.2f}×")


if __name__ == "__main__":
    main()
