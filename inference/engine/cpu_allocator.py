"""Keep glibc from returning freed memory to the OS between engine steps.

Each step allocates the same large temporaries (activations, gathered KV blocks, logits). With glibc's
defaults, big blocks are mmapped and unmapped every time, and every fresh page is zero-filled by the
kernel: on the 2-core CPU machine that cost more system time than the model itself. Raising the trim and
mmap thresholds lets the heap keep and reuse that memory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("curbside.engine")

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MAX_MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's ceiling on 64-bit


def keep_freed_memory() -> bool:
    """Best effort; returns False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        ok = libc.mallopt(M_MMAP_THRESHOLD, MAX_MMAP_THRESHOLD) == 1
        ok &= libc.mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1
        return bool(ok)
    except (OSError, AttributeError):
        log.debug("mallopt unavailable; keeping the allocator defaults")
        return False
