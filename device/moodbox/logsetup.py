"""The command line's logging: one format, python-mpd2 kept quiet, and a repeating warning logged once,
then summarised, so a box without a camera or a broker does not fill the journal with one line a second."""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

_NUMBERS = re.compile(r"\d+(?:\.\d+)?")


@dataclass
class _Seen:
    since: float
    repeats: int = 0


class RepeatFilter(logging.Filter):
    """Passes a warning (or worse) the first time; drops the same warning (numbers aside: retry delays,
    ports, counts) for ``window_s`` after that, then passes it once more with how often it repeated."""

    def __init__(self, window_s: float = 600.0, clock: Callable[[], float] = time.monotonic, keep: int = 256) -> None:
        super().__init__()
        self.window_s = window_s
        self._clock = clock
        self._keep = keep
        self._seen: OrderedDict[tuple[str, int, str], _Seen] = OrderedDict()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        key = (record.name, record.levelno, _NUMBERS.sub("#", message))
        now = self._clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen.since < self.window_s:
                seen.repeats += 1
                return False
            self._seen[key] = _Seen(now)
            self._seen.move_to_end(key)
            while len(self._seen) > self._keep:
                self._seen.popitem(last=False)
        if seen is not None and seen.repeats:
            record.msg, record.args = f"{message} (repeated {seen.repeats} times in {now - seen.since:.0f} s)", ()
        return True


def setup_logging(level: str) -> None:
    """Log to stderr at ``level``; under systemd (JOURNAL_STREAM set) without timestamps, which
    journald adds itself."""
    if os.environ.get("JOURNAL_STREAM"):
        fmt = "%(levelname)s %(name)s: %(message)s"
    else:
        fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    handler.addFilter(RepeatFilter())
    logging.basicConfig(level=getattr(logging, level), handlers=[handler], force=True)
    logging.getLogger("mpd").setLevel(max(logging.WARNING, getattr(logging, level)))  # python-mpd2 logs every call
