"""Process-level tuning for CPU inference."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

__all__ = ["reuse_freed_memory"]

log = logging.getLogger(__name__)

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_tuned = False


def reuse_freed_memory() -> bool:
    """Keep freed heap memory for reuse instead of handing it back to the kernel (glibc only).

    A forward pass allocates activations of several MB; glibc serves such blocks with fresh
    ``mmap`` pages and unmaps them on free, so every pass pays page faults again. On the VMs
    measured here that was about 10% of fp32 inference time (benchmarks/README.md). Raising the
    mmap and trim thresholds keeps the blocks on the heap; the process then holds on to its peak
    memory. Returns whether the setting was applied (False off Linux or on other C libraries).
    """
    global _tuned
    if _tuned:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, 1 << 30) == 1 and mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1
    _tuned = ok
    log.debug("heap reuse for CPU inference: %s", "on" if ok else "not available")
    return ok
