"""Handing freed memory back to the system.

glibc keeps what a program frees for its own reuse: after a large model is dropped, the process still
holds its pages, so dropping it saves nothing until ``malloc_trim`` returns them. Elsewhere (another C
library) this does nothing."""

from __future__ import annotations

import ctypes


def give_back() -> bool:
    """Return the C heap's free pages to the system; False where the C library cannot (not glibc)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim(0)
    return True
