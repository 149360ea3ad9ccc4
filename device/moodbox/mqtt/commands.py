"""Commands from Home Assistant: parsing (pure) and per-topic rate limits.

Anything on the network can publish to the command topics, so a payload is accepted only when it is
exactly one of the documented values; everything else is a ValueError saying why it was ignored. The
:class:`CommandGate` keeps a flood from thrashing MPD: per topic at most one command per interval, the
latest value winning (a slider dragged across the range ends where it was let go).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

MAX_PAYLOAD = 128  # bytes; every valid command is far shorter
COMMANDS = ("auto_dj", "privacy", "mood", "music", "skip", "volume")


class Commands(Protocol):
    """What Home Assistant can ask of the box; implemented by the daemon."""

    def set_auto_dj(self, on: bool) -> None: ...

    def set_privacy(self, on: bool) -> None: ...

    def set_mood(self, mood: str | None) -> None: ...  # None = follow the emotion ("auto")

    def set_music(self, on: bool) -> None: ...  # play / pause

    def skip(self) -> None: ...

    def set_volume(self, percent: int) -> None: ...


@dataclass(frozen=True)
class Command:
    name: str
    value: Any

    def describe(self) -> str:
        if self.name == "mood" and self.value is None:
            return "mood auto"
        if self.value is None:
            return self.name
        if isinstance(self.value, bool):
            return f"{self.name} {'ON' if self.value else 'OFF'}"
        return f"{self.name} {self.value}"


def parse_command(base: str, topic: str, payload: bytes, moods: list[str], max_volume: int = 100) -> Command:
    """A validated command, or ValueError saying why the message is ignored."""
    if not topic.startswith(base + "/") or not topic.endswith("/set"):
        raise ValueError(f"not a command topic: {topic}")
    name = topic[len(base) + 1 : -len("/set")]
    if name not in COMMANDS:
        raise ValueError(f"unknown command topic {topic}")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"{topic}: payload of {len(payload)} bytes is too long")
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"{topic}: payload is not UTF-8 text") from None
    if name in ("auto_dj", "privacy", "music"):
        if text.upper() not in ("ON", "OFF"):
            raise ValueError(f"{topic}: expected ON or OFF, got {text[:20]!r}")
        return Command(name, text.upper() == "ON")
    if name == "mood":
        if text == "auto":
            return Command(name, None)
        if text not in moods:
            raise ValueError(f"{topic}: unknown mood {text[:20]!r}; expected auto or one of {', '.join(moods)}")
        return Command(name, text)
    if name == "volume":
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{topic}: expected a number 0-{max_volume}, got {text[:20]!r}") from None
        if not 0 <= value <= 100:  # also rejects nan and inf
            raise ValueError(f"{topic}: volume {value:g} outside 0-100")
        return Command(name, int(round(value)))
    if text != "PRESS":
        raise ValueError(f"{topic}: expected PRESS, got {text[:20]!r}")
    return Command("skip", None)


def dispatch(commands: Commands, cmd: Command) -> None:
    """Calls the one handler a command names."""
    if cmd.name == "auto_dj":
        commands.set_auto_dj(cmd.value)
    elif cmd.name == "privacy":
        commands.set_privacy(cmd.value)
    elif cmd.name == "mood":
        commands.set_mood(cmd.value)
    elif cmd.name == "music":
        commands.set_music(cmd.value)
    elif cmd.name == "skip":
        commands.skip()
    elif cmd.name == "volume":
        commands.set_volume(cmd.value)


class CommandGate:
    """At most one command per topic per ``interval_s``; one that comes sooner waits (the latest value
    replacing an earlier waiting one) and is applied by :meth:`due` when its interval is up. Memory is
    bounded: one waiting command per topic."""

    def __init__(self, apply: Callable[[Command], None], interval_s: float = 0.25, clock: Callable[[], float] = time.monotonic) -> None:
        self._apply = apply
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._waiting: dict[str, Command] = {}
        self.coalesced = 0

    def offer(self, cmd: Command) -> bool:
        """Applies the command now (True) or keeps it waiting (False)."""
        now = self._clock()
        with self._lock:
            last = self._last.get(cmd.name)
            if last is not None and now - last < self.interval_s:
                if cmd.name in self._waiting:
                    self.coalesced += 1
                self._waiting[cmd.name] = cmd
                return False
            self._last[cmd.name] = now
            self._waiting.pop(cmd.name, None)
        self._apply(cmd)
        return True

    def due(self) -> None:
        """Applies the waiting commands whose interval is up (called often from a timer thread)."""
        now = self._clock()
        ready: list[Command] = []
        with self._lock:
            for name, cmd in list(self._waiting.items()):
                if now - self._last.get(name, 0.0) >= self.interval_s:
                    ready.append(cmd)
                    self._last[name] = now
                    del self._waiting[name]
        for cmd in ready:
            self._apply(cmd)

    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)
