"""Files the box keeps across restarts and power cuts: written whole or not at all, and an unreadable
one set aside (never silently overwritten, so it can still be looked at)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: str) -> None:
    """Old or new content, never half of one, even across a power cut: the data is fsynced before the
    rename, and the folder after it (else the rename itself may be lost)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def set_aside(path: Path) -> Path:
    """Moves an unreadable file to ``<name>.corrupt`` beside it (best effort) and returns that path."""
    aside = path.with_name(path.name + ".corrupt")
    with contextlib.suppress(OSError):
        path.replace(aside)
    return aside
