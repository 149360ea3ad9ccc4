"""Native libraries' own chatter on stderr, kept off the user's terminal and the journal.

LiteRT's C++ runtime prints ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` on file
descriptor 2 when it allocates tensors; no environment variable or Python API turns that logger down
(TF_CPP_MIN_LOG_LEVEL is TensorFlow's, not LiteRT's). So the descriptor is pointed at a temporary file
for that call, and whatever else was written there meanwhile is passed on unchanged."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

# the lines that say nothing a user acts on
_NOISE = re.compile(rb"^INFO: Created TensorFlow Lite .*delegate for CPU\.\s*$")


@contextlib.contextmanager
def quiet_native_info() -> Iterator[list[str]]:
    """Drop LiteRT's INFO lines written to fd 2 inside the block; pass every other line on. The list
    yielded receives the dropped lines after the block, so the caller can log what matters at its level."""
    dropped: list[str] = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (closed, or a test's capture): nothing to hide
        yield dropped
        return
    with tempfile.TemporaryFile() as buf:
        os.dup2(buf.fileno(), 2)
        try:
            yield dropped
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            buf.seek(0)
            lines = buf.read().splitlines(keepends=True)
            kept = [line for line in lines if not _NOISE.match(line)]
            dropped.extend(line.decode("utf-8", "replace").strip() for line in lines if _NOISE.match(line))
            if kept:
                os.write(2, b"".join(kept))
