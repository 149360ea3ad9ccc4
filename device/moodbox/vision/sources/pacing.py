"""Pacing a file's own timestamps in wall-clock time (``camera.realtime``)."""

from __future__ import annotations

import threading
import time


class Pacer:
    """Sleeps so that frame timestamps are honoured in wall-clock time (``realtime`` replay)."""

    def __init__(self, enabled: bool, stop: threading.Event) -> None:
        self.enabled = enabled
        self._stop = stop
        self._origin: tuple[float, float] | None = None

    def wait(self, t: float) -> None:
        if not self.enabled:
            return
        delay = self.lateness(t) * -1
        if delay > 0:
            self._stop.wait(delay)

    def lateness(self, t: float) -> float:
        """Seconds the frame at ``t`` is behind its wall-clock slot (negative: early)."""
        now = time.monotonic()
        if self._origin is None:
            self._origin = (now, t)
        return now - (self._origin[0] + (t - self._origin[1]))

    def rebase(self, t: float) -> None:
        """Make ``t`` due now: after a wait for frames, neither sleep for the gap nor race to catch up."""
        self._origin = (time.monotonic(), t)
