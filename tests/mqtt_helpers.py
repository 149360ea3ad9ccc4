"""A test subscriber that records every message it sees, and a recording Commands fake."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


class Recorder:
    def __init__(
        self,
        port: int,
        topics: list[str] = ["#"],
        username: str | None = None,
        password: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.arrived: list[float] = []  # monotonic time of each message's arrival
        self._lock = threading.Lock()
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"recorder-{time.monotonic_ns()}")
        if username:
            self.c.username_pw_set(username, password)
        self.c.on_message = self._on_message
        self._subscribed = threading.Event()
        self.c.on_connect = lambda c, u, f, rc, p: (c.subscribe([(t, 1) for t in topics]), None)
        self.c.on_subscribe = lambda *a: self._subscribed.set()
        self.c.connect(host, port)
        self.c.loop_start()
        assert self._subscribed.wait(5), "recorder could not subscribe"

    def _on_message(self, c, u, msg) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
            self.arrived.append(time.monotonic())

    def on(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t == topic]

    def last(self, topic: str) -> bytes | None:
        got = self.on(topic)
        return got[-1] if got else None

    def topics(self, prefix: str) -> set[str]:
        with self._lock:
            return {t for t, _, _ in self.messages if t.startswith(prefix)}

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self.arrived.clear()

    def publish(self, topic: str, payload: Any, retain: bool = False) -> None:
        self.c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@dataclass
class RecordingCommands:
    """The box's command handlers, recorded; called with a Command, it dispatches it through the command
    table as the daemon's loop does (the bridge's ``submit``)."""

    calls: list[tuple[str, Any]] = field(default_factory=list)

    def __call__(self, cmd: Any) -> None:
        from moodbox.home.commands import dispatch

        dispatch(self, cmd)

    def set_auto_dj(self, on: bool) -> None:
        self.calls.append(("auto_dj", on))

    def set_privacy(self, on: bool) -> None:
        self.calls.append(("privacy", on))

    def set_mood(self, mood: str | None) -> None:
        self.calls.append(("mood", mood))

    def set_music(self, on: bool) -> None:
        self.calls.append(("music", on))

    def skip(self) -> None:
        self.calls.append(("skip", None))

    def set_volume(self, percent: int) -> None:
        self.calls.append(("volume", percent))


class Beats:
    """A group leader's beat on the broker (what a leader's bridge sends every BEAT_S), switchable."""

    def __init__(self, rec: Recorder, group: str = "house") -> None:
        self.rec, self.group = rec, group
        self.on = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            if self.on.is_set():
                self.rec.publish("moodbox/living/group", json.dumps({"group": self.group, "leader": "living"}))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
