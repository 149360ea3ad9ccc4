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


class Commands(Protocol):
    """What Home Assistant can ask of the box; implemented by the daemon."""

    def set_auto_dj(self, on: bool) -> None: ...

    def set_privacy(self, on: bool) -> None: ...

    def set_mood(self, mood: str | None) -> None: ...  # None = follow the emotion ("auto")

    def set_music(self, on: bool) -> None: ...  # play / pause

    def skip(self) -> None: ...

    def set_volume(self, percent: int) -> None: ...


@dataclass(frozen=True)
class Limits:
    """What a payload is checked against: the configured moods and the volume cap."""

    moods: tuple[str, ...]
    max_volume: int = 100


def _on_off(text: str, limits: Limits) -> bool:
    if text.upper() not in ("ON", "OFF"):
        raise ValueError(f"expected ON or OFF, got {text[:20]!r}")
    return text.upper() == "ON"


def _mood(text: str, limits: Limits) -> str | None:
    if text == "auto":
        return None
    if text not in limits.moods:
        raise ValueError(f"unknown mood {text[:20]!r}; expected auto or one of {', '.join(limits.moods)}")
    return text


def _volume(text: str, limits: Limits) -> int:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number 0-{limits.max_volume}, got {text[:20]!r}") from None
    if not 0 <= value <= 100:  # also rejects nan and inf
        raise ValueError(f"volume {value:g} outside 0-100")
    return int(round(value))


def _press(text: str, limits: Limits) -> None:
    if text != "PRESS":
        raise ValueError(f"expected PRESS, got {text[:20]!r}")


@dataclass(frozen=True)
class CommandSpec:
    """One command: ``<base_topic>/<device_id>/<word>/set``, its payload's parser, the handler it calls
    on the box, and the Home Assistant entity (component and object id) that sends it."""

    word: str
    parse: Callable[[str, Limits], Any]
    apply: Callable[[Commands, Any], None]
    component: str
    object_id: str


# The one table of commands: parsing, dispatch, discovery's command topics and the docs' topic table
# follow from it (tests/test_mqtt.py checks the docs against it).
COMMAND_TABLE: tuple[CommandSpec, ...] = (
    CommandSpec("auto_dj", _on_off, lambda box, v: box.set_auto_dj(v), "switch", "auto_dj"),
    CommandSpec("privacy", _on_off, lambda box, v: box.set_privacy(v), "switch", "privacy"),
    CommandSpec("mood", _mood, lambda box, v: box.set_mood(v), "select", "mood_select"),
    CommandSpec("music", _on_off, lambda box, v: box.set_music(v), "switch", "music"),
    CommandSpec("skip", _press, lambda box, v: box.skip(), "button", "skip"),
    CommandSpec("volume", _volume, lambda box, v: box.set_volume(v), "number", "volume"),
)
BY_WORD = {spec.word: spec for spec in COMMAND_TABLE}
COMMANDS = tuple(BY_WORD)


def command_topic(base: str, word: str) -> str:
    """The topic a command is sent on; an unknown word is an error here, not a dead button."""
    return f"{base}/{BY_WORD[word].word}/set"


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
    spec = BY_WORD.get(name)
    if spec is None:
        raise ValueError(f"unknown command topic {topic}")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"{topic}: payload of {len(payload)} bytes is too long")
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"{topic}: payload is not UTF-8 text") from None
    try:
        value = spec.parse(text, Limits(tuple(moods), max_volume))
    except ValueError as exc:
        raise ValueError(f"{topic}: {exc}") from None
    return Command(spec.word, value)


def dispatch(commands: Commands, cmd: Command) -> None:
    """Calls the one handler a command names."""
    BY_WORD[cmd.name].apply(commands, cmd.value)


class CommandGate:
    """At most one command per topic per ``interval_s``; one that comes sooner waits (the latest value
    replacing an earlier waiting one) and is applied by :meth:`due` when its interval is up. Memory is
    bounded: one waiting command per topic."""

    def __init__(
        self, apply: Callable[[Command], None], interval_s: float = 0.25, clock: Callable[[], float] = time.monotonic
    ) -> None:
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
