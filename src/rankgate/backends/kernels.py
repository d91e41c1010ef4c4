"""The matrix products of the packed forward passes, on the kernels chosen for the CPU.

:class:`Linears` runs a model's ``nn.Linear`` layers either as the modules themselves (torch's
BLAS, MKL on x86 wheels), or through oneDNN (``torch.ops.mkldnn._linear_pointwise``, the op
torch's own compiler emits for CPU linear layers), and optionally in bf16 with fp32 around it
(``bf16-mixed``: inputs rounded to bf16, a bf16 product accumulated in fp32 by the kernel, the
output in bf16, as ``torch.autocast`` does for linear layers). oneDNN's fp32 products are exact
fp32 arithmetic in another summation order (within 1e-5 of the modules' own on the probes).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["Linears", "onednn_available", "onednn_bf16_available", "route_to_onednn"]


def onednn_available(torch: Any) -> bool:
    """Whether this torch has oneDNN's linear op (CPU builds for x86 and ARM do)."""
    try:
        return bool(torch.backends.mkldnn.is_available()) and hasattr(
            torch.ops.mkldnn, "_linear_pointwise"
        )
    except (AttributeError, RuntimeError):
        return False


def onednn_bf16_available(torch: Any) -> bool:
    """Whether oneDNN runs bf16 products on this CPU (it needs AVX-512 BW/VL/DQ, AVX-NE-CONVERT
    or AMX; elsewhere its bf16 weight reorder raises)."""
    try:
        return onednn_available(torch) and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class Linears:
    """Runs ``modules`` (linear layers) on the chosen kernels and precision.

    Args:
        onednn: fp32 and bf16 products through oneDNN (CPU only; ignored elsewhere).
        bf16: keep a bf16 copy of each weight (taken when built) and run the products in bf16
            (``bf16-mixed``); the modules' own weights are left as they are.
        rows_hint: the typical number of rows of a product, for oneDNN's weight layout.
    """

    def __init__(
        self,
        torch: Any,
        modules: Iterable[Any],
        *,
        onednn: bool,
        bf16: bool,
        rows_hint: int = 4096,
    ) -> None:
        self._torch = torch
        self._linear = torch.nn.functional.linear
        self.bf16 = bf16
        modules = list(modules)
        on_cpu = all(m.weight.device.type == "cpu" for m in modules)
        self.onednn = bool(onednn and on_cpu and onednn_available(torch))
        # bf16 copies (prepacked for oneDNN), taken now; fp32 products read the modules' own
        # weights at every call, so that weights trained or moved in place are the ones used.
        self._weights: dict[int, tuple[Any, Any]] = {}
        if not bf16:
            return
        # bf16 on a CPU where oneDNN has no bf16 kernels: torch's own (emulated) bf16 product.
        self.onednn = self.onednn and onednn_bf16_available(torch)
        for m in modules:
            w = m.weight.detach().to(torch.bfloat16)
            b = None if m.bias is None else m.bias.detach().to(torch.bfloat16)
            if self.onednn:  # oneDNN's blocked layout, once, instead of on every call
                w = torch.ops.mkldnn._reorder_linear_weight(w, rows_hint)
            self._weights[id(m)] = (w, b)

    def __call__(self, module: Any, x: Any) -> Any:
        """``module(x)`` on the chosen kernels; bf16 output in bf16 mode."""
        if self.bf16:
            got = self._weights.get(id(module))
            if got is None:
                return module(x)
            w, b = got
            x = x.to(self._torch.bfloat16)
        elif self.onednn and x.dtype == module.weight.dtype and not self._torch.is_grad_enabled():
            w, b = module.weight, module.bias
        else:
            return module(x)
        if self.onednn:
            return self._torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")
        return self._linear(x, w, b)


def route_to_onednn(torch: Any, modules: Iterable[Any]) -> int:
    """Make each fp32 CPU linear module's forward oneDNN's linear op (same weights, exact fp32
    in another summation order), for models whose layers run as transformers wrote them (the
    decoder path). Where gradients are on (training), the module's own forward runs. Returns
    how many modules were routed (0 where this torch has no oneDNN)."""
    if not onednn_available(torch):
        return 0
    op = torch.ops.mkldnn._linear_pointwise
    routed = 0
    for m in modules:
        if m.weight.device.type != "cpu" or m.weight.dtype != torch.float32:
            continue
        own = m.forward

        def forward(x: Any, m: Any = m, own: Any = own) -> Any:
            if torch.is_grad_enabled() or x.dtype != torch.float32:
                return own(x)
            return op(x, m.weight, m.bias, "none", [], "")

        m.forward = forward
        routed += 1
    return routed
