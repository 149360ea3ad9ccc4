"""What the owner set from Home Assistant — privacy, auto-DJ, the mood choice, music on/off, volume —
kept in the state directory so that a restart, a crash or a power cut changes none of it.

Privacy above all: a box that forgot privacy ON would open the camera and publish emotions after every
power cut. The file is written atomically (temporary file, fsync, rename, fsync of the folder), so it is
always either the old or the new settings; an unreadable one is set aside with one clear log line and the
config's defaults are used.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from moodbox.support.durable import set_aside, write_atomically

log = logging.getLogger(__name__)


def default_state_dir() -> Path:
    """Where the owner's settings and the skip feedback live: systemd's StateDirectory on the Pi, else
    the user's XDG state folder."""
    env = os.environ.get("STATE_DIRECTORY")
    if env:
        return Path(env.split(":")[0])
    return Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "moodbox"


FILE_NAME = "settings.json"
VERSION = 1


@dataclass(frozen=True)
class OwnerSettings:
    privacy: bool = False  # the camera stays closed
    auto_dj: bool = True  # the music follows the mood
    mood: str | None = None  # the owner's mood choice; None = auto
    music: bool = True  # play (True) or pause (False)
    volume: int | None = None  # None: never set from Home Assistant, MPD's own volume is left alone
    legacy_discovery_cleared: bool = False  # the pre-`moodbox_` discovery configs were cleared once


def _parse(raw: Any, defaults: OwnerSettings, moods: list[str]) -> OwnerSettings:
    """Settings from the file's JSON; ValueError naming the first bad key."""
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    out = defaults
    for key in ("privacy", "auto_dj", "music", "legacy_discovery_cleared"):
        if key in raw:
            if not isinstance(raw[key], bool):
                raise ValueError(f"{key}: expected true or false, got {raw[key]!r}")
            out = replace(out, **{key: raw[key]})
    if "mood" in raw:
        mood = raw["mood"]
        if mood is not None and not isinstance(mood, str):
            raise ValueError(f"mood: expected a mood name or null, got {mood!r}")
        if mood is not None and mood not in moods:
            log.warning("saved mood choice %r is not a mood of this config any more: back to auto", mood)
            mood = None
        out = replace(out, mood=mood)
    if "volume" in raw:
        vol = raw["volume"]
        if vol is not None and (isinstance(vol, bool) or not isinstance(vol, int) or not 0 <= vol <= 100):
            raise ValueError(f"volume: expected 0-100 or null, got {vol!r}")
        out = replace(out, volume=vol)
    return out


class SettingsStore:
    """The owner's settings in ``<state_dir>/settings.json``; thread-safe, every change saved at once."""

    def __init__(self, state_dir: Path, defaults: OwnerSettings, moods: list[str]) -> None:
        self.path = state_dir / FILE_NAME
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._settings = self._read(defaults, moods)
        self._warned_write = False

    def _read(self, defaults: OwnerSettings, moods: list[str]) -> OwnerSettings:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return defaults
        except OSError as exc:
            log.error("%s: cannot read the saved settings (%s); using the config's defaults", self.path, exc)
            return defaults
        try:
            return _parse(json.loads(data.decode("utf-8")), defaults, moods)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            aside = set_aside(self.path)
            log.error("%s: saved settings unreadable (%s); moved to %s, using the config's defaults", self.path, exc, aside.name)
            return defaults

    def get(self) -> OwnerSettings:
        with self._lock:
            return self._settings

    def update(self, **changes: Any) -> OwnerSettings:
        """Changes some settings and saves them if anything changed; returns the new settings."""
        with self._lock:
            new = replace(self._settings, **changes)
            if new == self._settings:
                return new
            self._settings = new
        self._save()
        return new

    def _save(self) -> None:
        # one writer at a time, always the newest settings: two quick commands never save out of order
        with self._write_lock:
            data = json.dumps({"version": VERSION, **asdict(self.get())}, indent=1, sort_keys=True)
            try:
                write_atomically(self.path, data)
                self._warned_write = False
            except OSError as exc:
                if not self._warned_write:
                    log.error("%s: cannot save the settings (%s): they will not survive a restart", self.path, exc)
                    self._warned_write = True
