"""Home Assistant MQTT discovery (docs/home-assistant.md), built by pure functions from the config.

Tested without a broker; the bridge and ``moodbox discovery`` only send what these return. Command
topics come from the command table (:mod:`.commands`); every ``value_json`` field a template reads is a
field of :class:`~moodbox.home.state.BoxState` (a test checks the templates against it). Everything
here is shaped by what an owner sees in Home Assistant: a value that was never measured is never
recorded as if it had been (``0`` or ``'none'``): numbers, switches and the presence sensor render
``None``, which Home Assistant 2024.3 shows as *unknown*; the emotion and mood sensors (enums, which turn
``None`` into text) are *unavailable* while their value is null. Ids are prefixed ``moodbox_`` so they
cannot collide with other MQTT devices, and every entity has its own name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from moodbox import __version__
from moodbox.config import EMOTIONS, MqttConfig
from moodbox.home.commands import command_topic
from moodbox.home.group import group_entities
from moodbox.home.state import LIBRARY_KEYS, key

ORIGIN = {"name": "moodbox", "sw_version": __version__, "support_url": "https://github.com/moodbox/moodbox"}
# Before discovery 2 the device identifier and unique ids were the bare device id; their retained
# configs are cleared once so an upgraded box leaves no ghost entities behind.
LEGACY_OBJECTS = (
    ("sensor", "emotion"),
    ("sensor", "confidence"),
    ("sensor", "mood"),
    ("select", "mood_select"),
    ("switch", "auto_dj"),
    ("switch", "privacy"),
    ("button", "skip"),
    ("number", "volume"),
    ("sensor", "fps"),
    ("sensor", "inference_ms"),
    ("sensor", "status"),
)


# How long Home Assistant is given to drop the entities before the box's retained state is cleared.
REMOVAL_SETTLE_S = 2.0


@dataclass(frozen=True)
class Message:
    topic: str
    payload: str
    retain: bool = True
    qos: int = 1


def base_topic(cfg: MqttConfig) -> str:
    return f"{cfg.base_topic}/{cfg.device_id}"


def node_id(cfg: MqttConfig) -> str:
    """The device's id in Home Assistant: prefixed, so ``livingroom`` cannot collide with another
    integration's ``livingroom``."""
    return f"moodbox_{cfg.device_id}"


def device_block(cfg: MqttConfig) -> dict[str, Any]:
    return {
        "identifiers": [node_id(cfg)],
        "name": "moodbox" if cfg.device_id == "moodbox" else f"moodbox {cfg.device_id}",
        "manufacturer": "moodbox",
        "model": "moodbox emotion-aware speaker",
        "sw_version": __version__,
    }


def _known_only(state: str, name: str) -> dict[str, Any]:
    """For text and enum sensors, whose templates cannot make them *unknown* in Home Assistant 2024.3
    (a rendered ``None`` becomes the text "None"): the entity is unavailable while the key is null."""
    return {
        "availability_mode": "all",
        "availability": [
            {"topic": state, "value_template": f"{{{{ 'online' if value_json.{key(name)} is not none else 'offline' }}}}"},
        ],
    }


def _unknown_if_null(expr: str, name: str) -> str:
    """A value template that renders ``None`` (Home Assistant: unknown) when the field is null."""
    return f"{{{{ {expr} if value_json.{key(name)} is not none else None }}}}"


def _diagnostic(topic: str, field: str, name: str, icon: str, unit: str | None) -> tuple[str, str, dict[str, Any]]:
    """A diagnostic sensor of one field: of the state (null: unknown), or of the library topic (whose
    fields are never null: it is sent only once a scan is known); a measurement with a unit, or (unit
    None) a timestamp."""
    kind = {"unit_of_measurement": unit, "state_class": "measurement"} if unit else {"device_class": "timestamp"}
    if topic.endswith("/library"):
        template = f"{{{{ value_json.{key(field, LIBRARY_KEYS)} }}}}"
    else:
        template = _unknown_if_null(f"value_json.{field}", field)
    return (
        "sensor",
        field,
        {
            "name": name,
            "icon": icon,
            "state_topic": topic,
            **kind,
            "entity_category": "diagnostic",
            "value_template": template,
        },
    )


def entity_configs(
    cfg: MqttConfig, moods: list[str], emotions: list[str], max_volume: int = 100, role: str | None = None
) -> list[tuple[str, str, dict[str, Any]]]:
    """(component, object id, config without the common keys) for every entity of the box; ``role``: the
    box's part in a group (a leader shows the House emotion, a follower its Music source)."""
    t = base_topic(cfg)
    state = f"{t}/state"
    library = f"{t}/library"  # the last library scan's figures (LibraryState)
    group = group_entities(state, emotions, role)
    switch = {"state_topic": state, "payload_on": "ON", "payload_off": "OFF", "state_on": "ON", "state_off": "OFF"}
    return group + [
        (
            "sensor",
            "emotion",
            {
                "name": "Emotion",
                "icon": "mdi:emoticon-outline",
                "state_topic": state,
                "device_class": "enum",
                "options": list(emotions),
                "value_template": "{{ value_json.emotion }}",
                **_known_only(state, "emotion"),
                # The smoothed scores the held emotion was chosen from: they never contradict it.
                "json_attributes_topic": state,
                "json_attributes_template": "{{ (value_json.scores or {}) | tojson }}",
            },
        ),
        (
            "sensor",
            "confidence",
            {
                "name": "Emotion confidence",
                "icon": "mdi:gauge",
                "state_topic": state,
                "unit_of_measurement": "%",
                "state_class": "measurement",
                "value_template": _unknown_if_null("(value_json.confidence * 100) | round(0)", "confidence"),
            },
        ),
        (
            "binary_sensor",
            "presence",
            {
                "name": "Presence",
                "device_class": "occupancy",
                "state_topic": state,
                "value_template": "{{ None if value_json.face is none else ('ON' if value_json.face else 'OFF') }}",
                "payload_on": "ON",
                "payload_off": "OFF",
            },
        ),
        (
            "sensor",
            "mood",
            {
                "name": "Mood playing",
                "icon": "mdi:music-note",
                "state_topic": state,
                "device_class": "enum",
                "options": list(moods),
                "value_template": "{{ value_json.mood }}",
                **_known_only(state, "mood"),
                "json_attributes_topic": state,
                "json_attributes_template": "{{ {'playlist': value_json.playlist, 'song': value_json.song} | tojson }}",
            },
        ),
        (
            "select",
            "mood_select",
            {
                "name": "Mood choice",
                "icon": "mdi:playlist-music",
                "state_topic": state,
                "command_topic": command_topic(t, "mood"),
                "value_template": "{{ value_json.mood_select }}",
                "options": ["auto", *moods],
            },
        ),
        (
            "switch",
            "auto_dj",
            {
                "name": "Auto-DJ",
                "icon": "mdi:robot",
                "command_topic": command_topic(t, "auto_dj"),
                "value_template": "{{ value_json.auto_dj }}",
                **switch,
            },
        ),
        (
            "switch",
            "music",
            {
                "name": "Music",
                "icon": "mdi:play-pause",
                "command_topic": command_topic(t, "music"),
                # MPD's own state: PLAYING is on, PAUSED/STOPPED off, unknown while MPD is unreachable.
                "value_template": "{{ None if value_json.music is none else ('ON' if value_json.music == 'PLAYING' else 'OFF') }}",
                **switch,
            },
        ),
        (
            "switch",
            "privacy",
            {
                # An MQTT switch has only a static icon (no icon_template in 2024.3); the toggle shows the state.
                "name": "Privacy",
                "icon": "mdi:incognito",
                "command_topic": command_topic(t, "privacy"),
                "value_template": "{{ value_json.privacy }}",
                **switch,
            },
        ),
        (
            "button",
            "skip",
            {"name": "Skip track", "icon": "mdi:skip-next", "command_topic": command_topic(t, "skip"), "payload_press": "PRESS"},
        ),
        (
            "number",
            "volume",
            {
                "name": "Volume",
                "icon": "mdi:volume-high",
                "state_topic": state,
                "command_topic": command_topic(t, "volume"),
                "value_template": "{{ value_json.volume }}",  # null renders None: the number's payload_reset (unknown)
                "min": 0,
                "max": max_volume,
                "step": 1,
                "unit_of_measurement": "%",
                "mode": "slider",
            },
        ),
        _diagnostic(state, "fps", "Frames per second", "mdi:camera-timer", "fps"),
        _diagnostic(state, "inference_ms", "Inference time", "mdi:timer-outline", "ms"),
        _diagnostic(library, "tracks_analysed", "Tracks analysed", "mdi:music-box-multiple", "tracks"),
        _diagnostic(library, "tracks_total", "Tracks in the library", "mdi:music-box-multiple-outline", "tracks"),
        _diagnostic(library, "last_scan", "Last music scan", "mdi:music-note-eighth", None),
        (
            "sensor",
            "status",
            {
                "name": "Status",
                "icon": "mdi:information-outline",
                "state_topic": state,
                "entity_category": "diagnostic",
                "value_template": "{{ value_json.status }}",
            },
        ),
    ]


def entity_id_keys(cfg: MqttConfig, component: str, object_id: str) -> dict[str, str]:
    """The entity id owners already use (``sensor.moodbox_emotion`` for device ``moodbox``) on every
    Home Assistant release: up to 2025.9 it comes from ``object_id``; 2025.10 to 2026.3 warn about
    ``object_id`` and read ``default_entity_id``; from 2026.4 only ``default_entity_id`` counts (without it
    the id is made from the device and entity names). Both are sent; a device id's ``-`` becomes ``_`` as
    Home Assistant's slug of ``object_id`` makes it."""
    slug = f"{cfg.device_id}_{object_id}".replace("-", "_")
    return {"object_id": slug, "default_entity_id": f"{component}.{slug}"}


def config_topic(cfg: MqttConfig, component: str, object_id: str) -> str:
    return f"{cfg.discovery_prefix}/{component}/{node_id(cfg)}/{object_id}/config"


def discovery_messages(
    cfg: MqttConfig, moods: list[str], max_volume: int = 100, emotions: list[str] | None = None, role: str | None = None
) -> list[Message]:
    """Retained discovery configs for every entity of the one moodbox device (``emotions``: the
    model's labels, by default the seven FER2013 ones)."""
    emotions = list(emotions or EMOTIONS)
    t = base_topic(cfg)
    nid = node_id(cfg)
    box = {"topic": f"{t}/availability"}
    common = {"device": device_block(cfg), "origin": ORIGIN}
    out = []
    for component, object_id, conf in entity_configs(cfg, moods, emotions, max_volume, role):
        conf = {**conf, "availability": [box, *conf.get("availability", [])]}
        payload = {**conf, "unique_id": f"{nid}_{object_id}", **entity_id_keys(cfg, component, object_id), **common}
        out.append(Message(config_topic(cfg, component, object_id), json.dumps(payload, sort_keys=True)))
    return out


def legacy_removal_messages(cfg: MqttConfig) -> list[Message]:
    """Empty retained payloads on the configs of moodbox before discovery 2 (node id = bare device id)."""
    return [Message(f"{cfg.discovery_prefix}/{c}/{cfg.device_id}/{o}/config", "", True) for c, o in LEGACY_OBJECTS]


def removal_messages(cfg: MqttConfig, moods: list[str]) -> list[Message]:
    """Empty retained payloads on the configs (old and new ids): Home Assistant deletes the entities and
    the broker forgets the configs. Send these first and :func:`state_removal_messages` only once Home
    Assistant has dropped the entities (:data:`REMOVAL_SETTLE_S`): an entity still subscribed to the
    state renders its template on the empty payload and logs an error (seen on Home Assistant 2024.3)."""
    every = {m.topic for role in ("leader", "follower") for m in discovery_messages(cfg, moods, role=role)}
    return [Message(t, "", True) for t in sorted(every)] + legacy_removal_messages(cfg)


def state_removal_messages(cfg: MqttConfig) -> list[Message]:
    """Empty retained payloads on the box's state and availability: the broker forgets the box."""
    t = base_topic(cfg)
    return [Message(f"{t}/state", "", True), Message(f"{t}/library", "", True), Message(f"{t}/availability", "", True)]
