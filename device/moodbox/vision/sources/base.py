"""What every frame source hands out and how it fails."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp"}


class SourceError(RuntimeError):
    """A source that cannot be opened at all (a wrong path, a missing library)."""


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # BGR (H, W, 3) or grey (H, W), uint8
    t: float  # seconds, monotonic; from the file for files
    index: int


class FrameSource(Protocol):
    name: str

    def frames(self, tick_s: float | None = None) -> Iterator[Frame | None]:
        """Frames until the source ends (files) or ``close`` is called (live sources). With ``tick_s``, a
        live source that has no new frame for that long yields None, so the caller stays responsive."""
        ...

    def alive(self) -> bool:
        """False when the source is wedged (a capture thread stuck in a driver call)."""
        ...

    def close(self) -> None: ...
