"""The last scan's figures, kept in the state folder by ``moodbox library scan`` and shown by the daemon
as Home Assistant's diagnostic sensors (tracks analysed, tracks in the library, last scan)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from moodbox.home.state import LibraryState
from moodbox.support.durable import write_atomically

STATUS_FILE = "library.json"
RECHECK_S = 10.0  # the file changes once a night: look at it now and then, not on every state


@dataclass(frozen=True)
class LibraryStatus:
    analysed: int | None = None  # tracks with stickers after the last scan; None: never scanned
    tracks: int | None = None  # tracks in MPD's database then
    last_scan: str | None = None  # when it finished, ISO 8601 UTC

    @classmethod
    def read(cls, path: Path) -> LibraryStatus:
        """The file's figures; unknown (None) for a missing or unreadable file, never a made-up 0."""
        try:
            raw = json.loads(path.read_text())
            when = datetime.fromtimestamp(int(raw["last_scan"]), timezone.utc).isoformat(timespec="seconds")
            return cls(int(raw["analysed"]), int(raw["tracks"]), when)
        except (OSError, ValueError, KeyError, TypeError, OverflowError):
            return cls()


def write(state_dir: Path, analysed: int, tracks: int, finished: float | None = None) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    data = {"last_scan": int(finished if finished is not None else time.time()), "tracks": tracks, "analysed": analysed}
    write_atomically(state_dir / STATUS_FILE, json.dumps(data, sort_keys=True) + "\n")


class StatusWatch:
    """The daemon's view of the file: re-read when its mtime changes, looked at every RECHECK_S."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / STATUS_FILE
        self._checked = float("-inf")
        self._mtime: float | None = None
        self.status = LibraryStatus()

    def get(self, now: float | None = None) -> LibraryStatus:
        now = time.monotonic() if now is None else now
        if now - self._checked >= RECHECK_S:
            self._checked = now
            try:
                mtime: float | None = self.path.stat().st_mtime
            except OSError:
                mtime = None
            if mtime != self._mtime:
                self._mtime = mtime
                self.status = LibraryStatus.read(self.path) if mtime is not None else LibraryStatus()
        return self.status

    def figures(self, now: float | None = None) -> LibraryState | None:
        """What the box publishes on its library topic; None before any scan (nothing is sent then)."""
        lib = self.get(now)
        if lib.analysed is None or lib.tracks is None or lib.last_scan is None:
            return None
        return LibraryState(lib.analysed, lib.tracks, lib.last_scan)
