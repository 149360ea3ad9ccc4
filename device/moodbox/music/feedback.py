"""Skip feedback: how often each track was skipped early while playing for each mood.

Kept in a small JSON file (in systemd's StateDirectory on the Pi) written atomically, so a crash or a
power cut never leaves half a file; an unreadable file is set aside and started afresh, with a warning.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from moodbox.support.durable import set_aside, write_atomically

log = logging.getLogger(__name__)


class FeedbackStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._counts: dict[str, dict[str, int]] = self._read()

    def _read(self) -> dict[str, dict[str, int]]:
        try:
            raw = json.loads(self.path.read_text())
            return {str(m): {str(f): int(n) for f, n in files.items()} for m, files in raw.get("skips", {}).items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            aside = set_aside(self.path)
            log.warning("%s: unreadable skip feedback (%s); moved to %s and starting afresh", self.path, exc, aside.name)
            return {}

    def skips(self, mood: str) -> dict[str, int]:
        with self._lock:
            return dict(self._counts.get(mood, {}))

    def record_skip(self, mood: str, file: str) -> int:
        with self._lock:
            n = self._counts.setdefault(mood, {}).get(file, 0) + 1
            self._counts[mood][file] = n
            data = json.dumps({"skips": self._counts}, indent=1, sort_keys=True)
        self._write(data)
        return n

    def _write(self, data: str) -> None:
        try:
            write_atomically(self.path, data)  # fsynced: the counts survive a power cut
        except OSError as exc:
            log.warning("%s: cannot save skip feedback: %s", self.path, exc)
