"""How the process's C heap treats the large blocks an analytic allocates.

Reading a million deals, conversion and velocity allocate some hundreds of megabytes per call
(the texts SQLite or PostgreSQL aggregate, numpy's arrays) and free them at the end. By default
glibc gives every block over its mmap threshold (128 KiB, adjusted up to 32 MiB) to the system
when it is freed, and takes fresh pages again at the next call: each page costs a fault and is
zeroed by the kernel. At 1M deals that was 150,000 faults and about a sixth of a conversion's
time (docs/performance.md). `keep_freed_memory` raises the mmap and trim thresholds so that such
blocks come from the heap and stay there for the next call: a worker keeps the memory of its
largest analytic (about 550 MB at 1M deals) instead of handing it back after each.

Only glibc has `mallopt`; elsewhere (macOS, musl) this does nothing.
"""

import ctypes
import sys

# glibc's malloc.h: mallopt's parameters.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# mallopt takes an int.
_INT_MAX = 2**31 - 1


def keep_freed_memory(limit: int) -> bool:
    """Serve blocks up to `limit` bytes from the heap and keep up to `limit` bytes of freed heap
    for reuse (0: glibc's defaults). True when glibc took both settings."""
    if limit <= 0 or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)  # the C library the interpreter runs on
    except OSError:
        return False
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:  # musl
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    value = min(limit, _INT_MAX)
    return bool(mallopt(M_MMAP_THRESHOLD, value)) and bool(mallopt(M_TRIM_THRESHOLD, value))
