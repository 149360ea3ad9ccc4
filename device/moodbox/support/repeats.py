"""A condition that repeats (MPD refusing the same command every poll, a camera that stays away, junk on
a command topic, the same fault every second) is logged once, then summarised, instead of once per
occurrence. The caller keeps its own words; this only says when to say them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Seen:
    count: int
    since: float
    last_said: float


class Repeats:
    """Occurrences of conditions, each named by a key.

    :meth:`occurred` says whether to log this occurrence in full: the first ``first_n`` of a key, then
    every ``every_n``-th, and at most once per ``every_s`` (each optional). :meth:`ended` forgets a key
    and logs one summary line if it happened more than once. A key never ended is said once, ever."""

    def __init__(
        self,
        logger: logging.Logger,
        level: int = logging.WARNING,
        first_n: int = 1,
        every_n: int | None = None,
        every_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = logger
        self.level = level
        self.first_n = first_n
        self.every_n = every_n
        self.every_s = every_s
        self._clock = clock
        self._seen: dict[str, _Seen] = {}

    def occurred(self, key: str = "") -> bool:
        now = self._clock()
        seen = self._seen.get(key)
        if seen is None:
            self._seen[key] = _Seen(1, now, now)
            return True
        seen.count += 1
        if seen.count <= self.first_n or (self.every_n and seen.count % self.every_n == 0):
            return True
        if self.every_s is not None and now - seen.last_said >= self.every_s:
            seen.last_said = now
            return True
        return False

    def active(self, key: str = "") -> bool:
        return key in self._seen

    def count(self, key: str = "") -> int:
        seen = self._seen.get(key)
        return seen.count if seen else 0

    def seconds(self, key: str = "") -> float:
        """How long the condition has lasted (0 when it is not active)."""
        seen = self._seen.get(key)
        return self._clock() - seen.since if seen else 0.0

    def ended(self, key: str = "", summary: str | None = None, *args: object) -> None:
        """The condition is over: ``summary % args`` is logged if it happened more than once; ``{count}``
        and ``{seconds}`` in it are filled in first."""
        seen = self._seen.pop(key, None)
        if seen is not None and seen.count > 1 and summary:
            text = summary.replace("{count}", str(seen.count)).replace("{seconds}", f"{self._clock() - seen.since:.0f}")
            self.log.log(self.level, text, *args)

    def end_all(self) -> None:
        self._seen.clear()
