"""Home Assistant over MQTT (DESIGN §5): availability, state, commands and discovery.

The discovery and state messages are built by pure functions from the config (tested without a broker);
:class:`MqttBridge` only sends them and turns command messages into calls on a narrow
:class:`Commands` interface, so it knows nothing of MPD or vision. paho's own loop reconnects; after
every (re)connect the bridge publishes ``online``, the discovery configs and the current state.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from moodbox import __version__
from moodbox.config import MqttConfig

log = logging.getLogger(__name__)

MAX_PAYLOAD = 128  # bytes; every valid command is far shorter
COMMANDS = ("auto_dj", "privacy", "mood", "skip", "volume")


@dataclass(frozen=True)
class Message:
    topic: str
    payload: str
    retain: bool = True
    qos: int = 1


class Commands(Protocol):
    """What Home Assistant can ask of the box; implemented by the daemon."""

    def set_auto_dj(self, on: bool) -> None: ...

    def set_privacy(self, on: bool) -> None: ...

    def set_mood(self, mood: str | None) -> None: ...  # None = follow the emotion ("auto")

    def skip(self) -> None: ...

    def set_volume(self, percent: int) -> None: ...


def base_topic(cfg: MqttConfig) -> str:
    return f"{cfg.base_topic}/{cfg.device_id}"


def device_block(cfg: MqttConfig) -> dict[str, Any]:
    return {
        "identifiers": [cfg.device_id],
        "name": "moodbox" if cfg.device_id == "moodbox" else f"moodbox {cfg.device_id}",
        "manufacturer": "moodbox",
        "model": "moodbox emotion-aware speaker",
        "sw_version": __version__,
    }


ORIGIN = {"name": "moodbox", "sw_version": __version__, "support_url": "https://github.com/moodbox/moodbox"}


def discovery_messages(cfg: MqttConfig, moods: list[str], max_volume: int = 100) -> list[Message]:
    """Retained discovery configs for every entity of the one moodbox device."""
    t = base_topic(cfg)
    did = cfg.device_id
    common = {"availability_topic": f"{t}/availability", "device": device_block(cfg), "origin": ORIGIN}
    state = f"{t}/state"
    entities: list[tuple[str, str, dict[str, Any]]] = [
        ("sensor", "emotion", {
            "name": "Emotion", "icon": "mdi:emoticon-outline", "state_topic": state,
            "value_template": "{{ value_json.emotion if value_json.emotion else 'none' }}",
            "json_attributes_topic": state, "json_attributes_template": "{{ value_json.scores | tojson }}",
        }),
        ("sensor", "confidence", {
            "name": "Emotion confidence", "icon": "mdi:gauge", "state_topic": state, "unit_of_measurement": "%",
            "state_class": "measurement", "value_template": "{{ (value_json.confidence * 100) | round(0) }}",
        }),
        ("sensor", "mood", {
            "name": "Mood playing", "icon": "mdi:music-note", "state_topic": state,
            "value_template": "{{ value_json.mood if value_json.mood else 'none' }}",
            "json_attributes_topic": state,
            "json_attributes_template": "{{ {'playlist': value_json.playlist, 'song': value_json.song} | tojson }}",
        }),
        ("select", "mood_select", {
            "name": "Mood", "icon": "mdi:playlist-music", "state_topic": state, "command_topic": f"{t}/mood/set",
            "value_template": "{{ value_json.mood_select }}", "options": ["auto", *moods],
        }),
        ("switch", "auto_dj", {
            "name": "Auto-DJ", "icon": "mdi:robot", "state_topic": state, "command_topic": f"{t}/auto_dj/set",
            "value_template": "{{ value_json.auto_dj }}", "payload_on": "ON", "payload_off": "OFF",
            "state_on": "ON", "state_off": "OFF",
        }),
        ("switch", "privacy", {
            "name": "Privacy", "icon": "mdi:camera-off", "state_topic": state, "command_topic": f"{t}/privacy/set",
            "value_template": "{{ value_json.privacy }}", "payload_on": "ON", "payload_off": "OFF",
            "state_on": "ON", "state_off": "OFF",
        }),
        ("button", "skip", {"name": "Skip track", "icon": "mdi:skip-next", "command_topic": f"{t}/skip/set", "payload_press": "PRESS"}),
        ("number", "volume", {
            "name": "Volume", "icon": "mdi:volume-high", "state_topic": state, "command_topic": f"{t}/volume/set",
            "value_template": "{{ value_json.volume if value_json.volume is not none else 0 }}",
            "min": 0, "max": max_volume, "step": 1, "unit_of_measurement": "%", "mode": "slider",
        }),
        ("sensor", "fps", {
            "name": "Frames per second", "icon": "mdi:camera-timer", "state_topic": state, "unit_of_measurement": "fps",
            "state_class": "measurement", "entity_category": "diagnostic", "value_template": "{{ value_json.fps }}",
        }),
        ("sensor", "inference_ms", {
            "name": "Inference time", "icon": "mdi:timer-outline", "state_topic": state, "unit_of_measurement": "ms",
            "state_class": "measurement", "entity_category": "diagnostic", "value_template": "{{ value_json.inference_ms }}",
        }),
        ("sensor", "status", {
            "name": "Status", "icon": "mdi:information-outline", "state_topic": state, "entity_category": "diagnostic",
            "value_template": "{{ value_json.status }}",
        }),
    ]
    out = []
    for component, object_id, conf in entities:
        payload = {**conf, "unique_id": f"{did}_{object_id}", "object_id": f"{did}_{object_id}", **common}
        out.append(Message(f"{cfg.discovery_prefix}/{component}/{did}/{object_id}/config", json.dumps(payload, sort_keys=True)))
    return out


def removal_messages(cfg: MqttConfig, moods: list[str]) -> list[Message]:
    """Empty retained payloads: Home Assistant deletes the entities, the broker forgets the configs."""
    return [Message(m.topic, "", True) for m in discovery_messages(cfg, moods)]


@dataclass(frozen=True)
class Command:
    name: str
    value: Any


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
    if name in ("auto_dj", "privacy"):
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
        if not 0 <= value <= 100:
            raise ValueError(f"{topic}: volume {value:g} outside 0-100")
        return Command(name, int(round(value)))
    return Command("skip", None)


def _client(cfg: MqttConfig, client_id: str) -> paho.Client:
    """A paho client with the config's credentials and TLS settings."""
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    if cfg.username:
        c.username_pw_set(cfg.username, cfg.password)
    if cfg.tls.enabled:
        c.tls_set(
            ca_certs=str(cfg.tls.ca_file) if cfg.tls.ca_file else None,
            certfile=str(cfg.tls.cert_file) if cfg.tls.cert_file else None,
            keyfile=str(cfg.tls.key_file) if cfg.tls.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
        c.tls_insecure_set(cfg.tls.insecure)
    return c


def publish_once(cfg: MqttConfig, messages: list[Message], timeout: float = 10.0) -> None:
    """Connect, publish, wait for delivery, disconnect: for ``moodbox discovery``. Raises ConnectionError
    with the broker's address and reason."""
    c = _client(cfg, f"moodbox-{cfg.device_id}-cli")
    result: dict[str, Any] = {}
    ready = threading.Event()

    def on_connect(client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        result["reason"] = reason
        ready.set()

    c.on_connect = on_connect
    where = f"{cfg.host}:{cfg.port}"
    try:
        c.connect(cfg.host, cfg.port, keepalive=30)
    except OSError as exc:
        raise ConnectionError(f"MQTT broker at {where} is unreachable: {exc}") from None
    c.loop_start()
    try:
        if not ready.wait(timeout):
            raise ConnectionError(f"MQTT broker at {where} did not answer in {timeout:.0f} s")
        if result["reason"].is_failure:
            raise ConnectionError(f"MQTT broker at {where} refused the connection: {result['reason']}")
        infos = [c.publish(m.topic, m.payload, qos=m.qos, retain=m.retain) for m in messages]
        for info in infos:
            info.wait_for_publish(timeout)
    finally:
        c.disconnect()
        c.loop_stop()


def state_payload(snapshot: dict[str, Any]) -> str:
    return json.dumps(snapshot, sort_keys=True, separators=(",", ":"))


class MqttBridge:
    def __init__(
        self,
        cfg: MqttConfig,
        commands: Commands,
        moods: list[str],
        max_volume: int = 100,
        snapshot: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.cfg = cfg
        self.commands = commands
        self.moods = list(moods)
        self.max_volume = max_volume
        self.topic = base_topic(cfg)
        self.where = f"{cfg.host}:{cfg.port}"
        self._snapshot = snapshot
        self.min_interval_s = cfg.state_min_interval_s
        self._lock = threading.Lock()
        self._last_state: str | None = None
        self._last_sent = 0.0
        self._pending: str | None = None
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self.connected = threading.Event()
        self.error: str | None = None
        self.ignored = 0
        c = _client(cfg, f"moodbox-{cfg.device_id}")
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
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=30)
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

    # --- outgoing ---

    def _send(self, msg: Message) -> None:
        self.client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain)

    def publish_discovery(self) -> None:
        for m in discovery_messages(self.cfg, self.moods, self.max_volume):
            self._send(m)

    def remove_discovery(self, timeout: float = 5.0) -> None:
        infos = [self.client.publish(m.topic, m.payload, qos=1, retain=True) for m in removal_messages(self.cfg, self.moods)]
        for info in infos:
            info.wait_for_publish(timeout)

    def publish_state(self, snapshot: dict[str, Any], force: bool = False) -> None:
        """Publish when the state changed, but never more often than ``min_interval_s`` (a change that
        comes sooner is sent when the interval is up)."""
        payload = state_payload(snapshot)
        with self._lock:
            if payload == self._last_state and not force:
                self._pending = None
                return
            now = time.monotonic()
            if not force and now - self._last_sent < self.min_interval_s:
                self._pending = payload
                return
            self._pending = None
            self._last_state = payload
            self._last_sent = now
        if self.connected.is_set():
            self.client.publish(f"{self.topic}/state", payload, qos=0, retain=True)

    def _heartbeat(self) -> None:
        while not self._stop.wait(max(0.05, min(0.2, self.min_interval_s))):
            with self._lock:
                pending = self._pending
                due = time.monotonic() - self._last_sent
            if pending is not None and due >= self.min_interval_s:
                self.publish_state(json.loads(pending))
            elif due >= self.cfg.state_interval_s:
                snap = self._snapshot() if self._snapshot else (json.loads(self._last_state) if self._last_state else None)
                if snap is not None:
                    self.publish_state(snap, force=True)

    # --- paho callbacks (paho's thread) ---

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            msg = f"MQTT broker at {self.where} refused the connection: {reason}"
            if "authori" in str(reason).lower() or "password" in str(reason).lower():
                msg += " (check mqtt.username and MOODBOX_MQTT_PASSWORD / the mqtt_password credential)"
            if msg != self.error:
                log.error("%s", msg)
            self.error = msg
            return
        self.error = None
        log.info("MQTT: connected to %s", self.where)
        client.subscribe([(f"{self.topic}/+/set", 1), (f"{self.cfg.discovery_prefix}/status", 1)])
        client.publish(f"{self.topic}/availability", "online", qos=1, retain=True)
        self.publish_discovery()
        snap = self._snapshot() if self._snapshot else (json.loads(self._last_state) if self._last_state else None)
        self.connected.set()
        if snap is not None:
            self.publish_state(snap, force=True)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        if was and not self._stop.is_set():
            log.warning("MQTT: lost the broker at %s (%s); reconnecting", self.where, reason)
        elif not was and not self._stop.is_set() and self.error is None:
            self.error = f"MQTT broker at {self.where} is unreachable"
            log.warning("%s; retrying", self.error)

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        msg = f"MQTT broker at {self.where} is unreachable"
        if msg != self.error:
            log.warning("%s; retrying every %d s at most", msg, int(self.cfg.reconnect_max_s))
        self.error = msg

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            if msg.topic == f"{self.cfg.discovery_prefix}/status":
                if msg.payload.strip() == b"online":
                    log.info("Home Assistant is back online: re-publishing discovery")
                    self.publish_discovery()
                    if self._last_state:
                        self.publish_state(json.loads(self._last_state), force=True)
                return
            if msg.retain:
                self._ignore(f"{msg.topic}: retained command ignored (clear it with an empty retained message)")
                return
            cmd = parse_command(self.topic, msg.topic, msg.payload, self.moods, self.max_volume)
        except ValueError as exc:
            self._ignore(str(exc))
            return
        try:
            log.info("command from MQTT: %s %s", cmd.name, "" if cmd.value is None else cmd.value)
            if cmd.name == "auto_dj":
                self.commands.set_auto_dj(cmd.value)
            elif cmd.name == "privacy":
                self.commands.set_privacy(cmd.value)
            elif cmd.name == "mood":
                self.commands.set_mood(cmd.value)
            elif cmd.name == "skip":
                self.commands.skip()
            elif cmd.name == "volume":
                self.commands.set_volume(cmd.value)
        except Exception:  # a command handler's bug must not kill paho's thread
            log.exception("command %s failed", cmd.name)

    def _ignore(self, why: str) -> None:
        self.ignored += 1
        # a flood of junk must not flood the log: the first few, then every hundredth
        if self.ignored <= 5 or self.ignored % 100 == 0:
            log.warning("MQTT: ignored message (%d so far): %s", self.ignored, why)
