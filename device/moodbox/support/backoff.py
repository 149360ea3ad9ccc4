"""Doubling pauses between attempts that failed the same way, so a missing camera, MPD or broker is
retried steadily without spinning or hammering it."""

from __future__ import annotations


class Backoff:
    """``first`` after the first failure, doubling to at most ``most``; :meth:`reset` after a success."""

    def __init__(self, first: float, most: float) -> None:
        self.first = first
        self.most = max(first, most)
        self.delay = first

    def next(self) -> float:
        """The pause to take now; the following one is twice as long (up to ``most``)."""
        delay = self.delay
        self.delay = min(self.delay * 2, self.most)
        return delay

    def reset(self) -> None:
        self.delay = self.first
