"""What the CPU can do for inference: its model, the instruction sets that matter, and the kernels
each precision runs on it.

The facts come from ``/proc/cpuinfo`` (Linux; elsewhere only what ``platform`` and torch report),
so a test can hand :func:`cpu_info` any text and check the choices made from it. The kernel names
say what the libraries pick on such a CPU: oneDNN (torch's CPU matrix products) uses AMX tiles for
bf16 and int8 when they exist, else AVX512-BF16 / AVX512-VNNI instructions, else converts bf16 to
fp32 (slower than fp32 itself); onnxruntime's int8 kernels (MLAS) use AMX-INT8, then VNNI, then
plain AVX2 integer code.
"""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CpuInfo", "Kernels", "choose_kernels", "cpu_info", "native_bf16", "onednn_fp32"]

# (flag in /proc/cpuinfo, name shown to users), in the order they are listed.
FEATURES = (
    ("avx2", "AVX2"),
    ("avx512f", "AVX-512"),
    ("avx512_bf16", "AVX512-BF16"),
    ("avx512_fp16", "AVX512-FP16"),
    ("avx512_vnni", "AVX512-VNNI"),
    ("avx_vnni", "AVX-VNNI"),
    ("amx_bf16", "AMX-BF16"),
    ("amx_fp16", "AMX-FP16"),
    ("amx_int8", "AMX-INT8"),
)


@dataclass(frozen=True)
class CpuInfo:
    """The CPU's model name, vendor and flags (lower case, as ``/proc/cpuinfo`` spells them)."""

    model: str
    flags: frozenset[str] = field(default_factory=frozenset)
    vendor: str = ""
    """``GenuineIntel``, ``AuthenticAMD``, … (empty where unknown)."""

    @property
    def features(self) -> list[str]:
        """The instruction sets that matter for inference, by their usual names."""
        return [name for flag, name in FEATURES if flag in self.flags]

    @property
    def amx(self) -> bool:
        return "amx_bf16" in self.flags and "amx_tile" in self.flags


@dataclass(frozen=True)
class Kernels:
    """Which kernels run each precision's matrix products on a CPU."""

    fp32: str
    bf16: str
    int8: str
    isa: str
    """The widest vector instructions of fp32 products (``AVX-512 FMA``, ``AVX2 FMA``…)."""
    fp32_onednn: bool
    """Whether fp32 linear layers go to oneDNN rather than torch's BLAS (MKL)."""
    bf16_native: bool
    """Whether bf16 products run on bf16 hardware (AMX or AVX512-BF16) rather than emulated."""

    def describe(self) -> str:
        return f"fp32 {self.fp32}; bf16 {self.bf16}; int8 {self.int8}"


def cpu_info(cpuinfo: str | None = None) -> CpuInfo:
    """This machine's CPU (or the one a ``/proc/cpuinfo`` text describes)."""
    if cpuinfo is None:
        return _this_cpu()
    model, vendor, flags = "", "", frozenset[str]()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "vendor_id" and not vendor:
            vendor = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
    name = model or platform.processor() or platform.machine() or "unknown"
    return CpuInfo(name, flags, vendor)


@functools.cache
def _this_cpu() -> CpuInfo:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    return cpu_info(text)


def native_bf16(cpu: CpuInfo) -> bool:
    """Whether bf16 matrix products run on bf16 hardware here (AMX-BF16 or AVX512-BF16)."""
    return cpu.amx or "avx512_bf16" in cpu.flags


def onednn_fp32(cpu: CpuInfo) -> bool:
    """Whether fp32 linear layers should run on oneDNN rather than MKL here.

    MKL picks its code path by CPU vendor: on AMD CPUs with AVX-512 its sgemm stays on a
    narrower path, and oneDNN (which dispatches on the instruction sets alone) ran the same fp32
    products about twice as fast on an AMD EPYC with AVX-512 (benchmarks/README.md). On Intel
    CPUs and on AMD CPUs without AVX-512, MKL is what was measured and stays.
    """
    return cpu.vendor == "AuthenticAMD" and "avx512f" in cpu.flags


def choose_kernels(cpu: CpuInfo, fp32_library: str = "auto") -> Kernels:
    """The kernels each precision runs on ``cpu``: oneDNN or MKL for fp32 (``fp32_library``
    ``auto`` chooses by :func:`onednn_fp32`; ``onednn`` or ``blas`` force one), oneDNN for bf16,
    onnxruntime's MLAS for int8."""
    flags = cpu.flags
    if "avx512f" in flags:
        isa = "AVX-512 FMA"
    elif "avx2" in flags:
        isa = "AVX2 FMA"
    else:
        isa = "SSE (no AVX2)"
    use_onednn = onednn_fp32(cpu) if fp32_library == "auto" else fp32_library == "onednn"
    fp32 = f"{'oneDNN' if use_onednn else 'MKL'} {isa}"
    if cpu.amx:
        bf16 = "oneDNN AMX-BF16 tiles"
    elif "avx512_bf16" in flags:
        bf16 = "oneDNN AVX512-BF16"
    else:
        bf16 = "emulated (no bf16 instructions: slower than fp32)"
    if "amx_int8" in flags and "amx_tile" in flags:
        int8 = "AMX-INT8 tiles"
    elif "avx512_vnni" in flags:
        int8 = "AVX512-VNNI"
    elif "avx_vnni" in flags:
        int8 = "AVX-VNNI"
    elif "avx2" in flags:
        int8 = "AVX2 integer (no VNNI)"
    else:
        int8 = "SSE integer"
    return Kernels(fp32, bf16, int8, isa, use_onednn, native_bf16(cpu))
