"""The MQTT bridge (docs/home-assistant.md): availability, state, commands and discovery on one connection.

It knows nothing of MPD or vision: it sends what :mod:`moodbox.home.discovery` builds and the
:class:`~moodbox.home.state.BoxState` the daemon hands it (it never asks for one), and hands each valid
command to ``submit`` (the daemon queues it for its own loop). paho's own loop reconnects; after every
(re)connect the bridge publishes ``online``, the discovery configs and the last state it was given. A
refused password or a rejected TLS certificate will not fix itself in a second, so those are retried with
a growing pause.

Threads: paho's network thread runs the callbacks (parsing, the rate gate); ``mqtt-state`` sends a state
that waited for its interval, re-sends the last one every ``mqtt.state_interval_s`` and applies waiting
commands. What they share sits under one lock.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.subscribeoptions import SubscribeOptions

from moodbox.config import MqttConfig
from moodbox.home.client import AUTH_HINT, describe_connect_failure, is_auth_refusal, make_client
from moodbox.home.commands import Command, CommandGate, parse_command
from moodbox.home.discovery import base_topic, discovery_messages, legacy_removal_messages
from moodbox.home.group import MAX_PAYLOAD, member_of, member_topics
from moodbox.home.state import BoxState, LibraryState
from moodbox.leaderlink import BEAT_S
from moodbox.support.backoff import Backoff
from moodbox.support.repeats import Repeats

log = logging.getLogger(__name__)

BACKOFF_MAX_S = 300.0  # longest pause between attempts the broker refused (password, certificate)
MIGRATION_PAUSE_S = 1.5  # lets Home Assistant drop the old entities before the new ones take their ids


class MqttBridge:
    def __init__(
        self,
        cfg: MqttConfig,
        submit: Callable[[Command], None],
        moods: list[str],
        max_volume: int = 100,
        emotions: list[str] | None = None,
        clear_legacy: bool = False,
        on_legacy_cleared: Callable[[], None] | None = None,
        members: Sequence[str] = (),
        on_member: Callable[[str, str, bytes], None] | None = None,
        role: str | None = None,
        beat: str | None = None,
    ) -> None:
        """``members`` (a group's leader, or a follower's leader): the boxes whose state, availability
        and group beat it listens to; each message goes to ``on_member(member, "state" | "availability" |
        "group", payload)`` on paho's thread. ``role``: the box's part in a group ("leader": the House emotion; "follower": its Music source).
        ``beat``: a leader's sign of life for its followers, sent on ``<topic>/group`` every ``BEAT_S``."""
        self.cfg = cfg
        self.submit = submit
        self.moods = list(moods)
        self.emotions = list(emotions) if emotions else None
        self.max_volume = max_volume
        self.members = list(members)
        self.on_member = on_member
        self.role = role
        self.beat = beat
        self._beat_sent = -1e9
        self.topic = base_topic(cfg)
        self.where = f"{cfg.host}:{cfg.port}"
        self.min_interval_s = cfg.state_min_interval_s
        self.rediscover_min_s = cfg.rediscover_min_s
        self._clear_legacy = clear_legacy
        self._on_legacy_cleared = on_legacy_cleared
        self._lock = threading.Lock()
        self._last_content: str | None = None
        self._last_state: BoxState | None = None  # the last one sent
        self._latest: BoxState | None = None  # the last one given
        self._last_sent = 0.0
        self._pending: BoxState | None = None
        self._library: LibraryState | None = None  # the last library figures given (None: no scan known)
        self._discovery_at: float | None = None  # when the discovery configs are due (None: not due)
        self._last_discovery = -1e9
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self._refused = Backoff(2.0, BACKOFF_MAX_S)  # attempts the broker refused: 2, 4, 8 ... 300 s apart
        self.connected = threading.Event()
        self.error: str | None = None
        self.ignored = 0
        self._ignored = Repeats(log, first_n=5, every_n=1000)
        self.discoveries = 0  # how often the configs went out (a test counts them)
        self.gate = CommandGate(self._apply, cfg.command_interval_s)
        c = make_client(cfg, f"moodbox-{cfg.device_id}")
        c.will_set(f"{self.topic}/availability", "offline", qos=1, retain=True)
        c.reconnect_delay_set(min_delay=1, max_delay=max(1, int(cfg.reconnect_max_s)))
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_connect_fail = self._on_connect_fail
        c.on_message = self._on_message
        self.client = c

    # --- lifecycle ---

    def start(self) -> None:
        log.info("MQTT: connecting to %s as %s", self.where, f"moodbox-{self.cfg.device_id}")
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=30, clean_start=True)
        self.client.loop_start()
        self._timer = threading.Thread(target=self._heartbeat, name="mqtt-state", daemon=True)
        self._timer.start()

    def stop(self, timeout: float = 1.5) -> None:
        """A clean stop: ``offline`` (retained) is delivered before disconnecting."""
        self._stop.set()
        if self.connected.is_set():
            info = self.client.publish(f"{self.topic}/availability", "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()
        if self._timer is not None:
            self._timer.join(1.0)

    # --- outgoing ---

    def publish_discovery(self) -> None:
        self._last_discovery = time.monotonic()
        self.discoveries += 1
        for m in discovery_messages(self.cfg, self.moods, self.max_volume, self.emotions, self.role):
            self.client.publish(m.topic, m.payload, qos=m.qos, retain=m.retain)

    def publish_state(self, state: BoxState, force: bool = False) -> None:
        """Publish when the state changed (the timestamp alone is no change), but never more often than
        ``min_interval_s`` (a change that comes sooner is sent when the interval is up)."""
        content = state.content()
        with self._lock:
            self._latest = state
            if content == self._last_content and not force:
                self._pending = None
                return
            now = time.monotonic()
            if not force and now - self._last_sent < self.min_interval_s:
                self._pending = state
                return
            self._pending = None
            self._last_content = content
            self._last_state = state
            self._last_sent = now
        if self.connected.is_set():
            self.client.publish(f"{self.topic}/state", state.payload(), qos=0, retain=True)

    def publish_library(self, library: LibraryState | None) -> None:
        """The library scan's figures (retained), when they change; None after figures clears them."""
        with self._lock:
            if library == self._library:
                return
            self._library = library
        if self.connected.is_set():
            self.client.publish(f"{self.topic}/library", library.payload() if library else "", qos=1, retain=True)

    def _current(self) -> BoxState | None:
        """The newest state the daemon handed over (sent or still waiting for its interval)."""
        with self._lock:
            return self._latest

    def _heartbeat(self) -> None:
        while not self._stop.wait(max(0.02, min(0.1, self.min_interval_s, self.gate.interval_s))):
            self.gate.due()
            now = time.monotonic()
            with self._lock:
                pending = self._pending
                due = now - self._last_sent
                discovery_due = self._discovery_at is not None and now >= self._discovery_at
                if discovery_due:
                    self._discovery_at = None
            if discovery_due and self.connected.is_set():
                self.publish_discovery()
            if self.beat is not None and now - self._beat_sent >= BEAT_S and self.connected.is_set():
                self._beat_sent = now
                self.client.publish(f"{self.topic}/group", self.beat, qos=0, retain=False)
            if pending is not None and due >= self.min_interval_s:
                self.publish_state(pending)
            elif due >= self.cfg.state_interval_s:
                latest = self._current()
                if latest is not None:
                    self.publish_state(latest, force=True)

    def _request_discovery(self, delay: float = 0.0) -> None:
        """Discovery after ``homeassistant/status online``: at once, or when ``rediscover_min_s`` since
        the last one is up (many requests in between become one)."""
        now = time.monotonic()
        at = max(now + delay, self._last_discovery + self.rediscover_min_s)
        with self._lock:
            if self._discovery_at is None or at < self._discovery_at:
                self._discovery_at = at

    # --- paho callbacks (paho's thread) ---

    def _backoff(self) -> float:
        """The next pause after an attempt that will fail the same way again: 2, 4, 8 … 300 s."""
        delay = self._refused.next()
        self.client.reconnect_delay_set(min_delay=int(delay), max_delay=int(delay))
        return delay

    def _report(self, msg: str, level: int) -> None:
        if msg != self.error:
            log.log(level, "%s", msg)
        self.error = msg

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            hint = AUTH_HINT if is_auth_refusal(reason) else ""
            delay = self._backoff()
            self._report(
                f"MQTT broker at {self.where} refused the connection: {reason}{hint}; "
                f"retrying with a growing pause (now {delay:.0f} s, at most {BACKOFF_MAX_S:.0f} s)",
                logging.ERROR,
            )
            return
        if self._refused.delay != self._refused.first:
            self._refused.reset()
            client.reconnect_delay_set(min_delay=1, max_delay=max(1, int(self.cfg.reconnect_max_s)))
        self.error = None
        log.info("MQTT: connected to %s", self.where)
        # retain-as-published: a retained command that reaches the box live keeps its flag and is ignored
        client.subscribe(
            [
                (f"{self.topic}/+/set", SubscribeOptions(qos=1, retainAsPublished=True)),
                # without it, a live `online` arrives unflagged and only a stale retained one is flagged
                (f"{self.cfg.discovery_prefix}/status", SubscribeOptions(qos=1)),
                *((t, SubscribeOptions(qos=1)) for t in member_topics(self.cfg, self.members)),
            ]
        )
        client.publish(f"{self.topic}/availability", "online", qos=1, retain=True)
        if self._clear_legacy:
            for m in legacy_removal_messages(self.cfg):
                client.publish(m.topic, m.payload, qos=1, retain=True)
            self._clear_legacy = False
            log.info("MQTT: cleared the discovery configs of older moodbox versions (new ids are prefixed moodbox_)")
            if self._on_legacy_cleared is not None:
                self._on_legacy_cleared()
            with self._lock:
                self._discovery_at = time.monotonic() + MIGRATION_PAUSE_S
        else:
            self.publish_discovery()
        snap = self._current()
        self.connected.set()
        if snap is not None:
            self.publish_state(snap, force=True)
        with self._lock:
            library = self._library
        if library is not None:  # a broker without persistence forgot it
            client.publish(f"{self.topic}/library", library.payload(), qos=1, retain=True)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        if self._stop.is_set():
            return
        if was:
            log.warning("MQTT: lost the broker at %s (%s); reconnecting", self.where, reason)
        elif self.error is None:
            self._report(f"MQTT broker at {self.where} closed the connection ({reason})", logging.WARNING)

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        # paho calls this inside its `except OSError`: the exception says what failed.
        msg, transient = describe_connect_failure(sys.exc_info()[1], self.where)
        if transient:
            self._report(f"{msg}; retrying every {self.cfg.reconnect_max_s:.0f} s at most", logging.WARNING)
        else:
            delay = self._backoff()
            self._report(
                f"{msg}; retrying with a growing pause (now {delay:.0f} s, at most {BACKOFF_MAX_S:.0f} s)", logging.ERROR
            )

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        member = member_of(self.cfg, self.members, msg.topic) if self.members else None
        if member is not None:
            if len(msg.payload) > MAX_PAYLOAD:
                self._ignore(f"{msg.topic}: {len(msg.payload)} bytes is not a box's state")
            elif self.on_member is not None:
                self.on_member(member[0], member[1], bytes(msg.payload))
            return
        try:
            if msg.topic == f"{self.cfg.discovery_prefix}/status":
                if msg.payload.strip() == b"online" and not msg.retain:
                    log.info("Home Assistant is back online: re-publishing discovery")
                    self._request_discovery()
                return
            if msg.retain:
                self._ignore(f"{msg.topic}: retained command ignored (clear it with an empty retained message)")
                return
            cmd = parse_command(self.topic, msg.topic, bytes(msg.payload), self.moods, self.max_volume)
        except ValueError as exc:
            self._ignore(str(exc))
            return
        self.gate.offer(cmd)

    def _apply(self, cmd: Command) -> None:
        log.info("command from MQTT: %s", cmd.describe())
        self.submit(cmd)

    def _ignore(self, why: str) -> None:
        self.ignored += 1
        # a flood of junk must not flood the log: the first few, then every thousandth
        if self._ignored.occurred():
            log.warning("MQTT: ignored message (%d so far): %s", self.ignored, why)
