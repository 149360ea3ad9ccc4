"""A group of boxes over MQTT (docs/multiroom.md): the topics a leader listens to, and the leader's
House emotion entity. Every box of a group uses the same broker and ``mqtt.base_topic``; a room is known
by its box's ``mqtt.device_id``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from moodbox.config import MqttConfig
from moodbox.home.state import key

KINDS = ("state", "availability", "group")  # a box's topics another box of its group listens to
MAX_PAYLOAD = 65536  # a box's state is ~1 kB: anything far larger is not one


def member_topics(cfg: MqttConfig, members: Sequence[str]) -> list[str]:
    return [f"{cfg.base_topic}/{m}/{kind}" for m in members for kind in KINDS]


def member_of(cfg: MqttConfig, members: Sequence[str], topic: str) -> tuple[str, str] | None:
    """(member, "state" | "availability" | "group") for one of the members' topics, else None."""
    head, _, kind = topic.rpartition("/")
    base, _, member = head.rpartition("/")
    if base == cfg.base_topic and member in members and kind in KINDS:
        return member, kind
    return None


def group_entities(state: str, emotions: Sequence[str], role: str | None) -> list[tuple[str, str, dict[str, Any]]]:
    """A leader's House emotion, a follower's Music source; nothing for a box on its own."""
    return [house_entity(state, emotions)] if role == "leader" else [source_entity(state)] if role == "follower" else []


def source_entity(state: str) -> tuple[str, str, dict[str, Any]]:
    """A follower's Music source: ``group`` while its speaker plays the leader's music, ``own`` while it
    plays its own (its leader lost); the attributes say which leader and why."""
    field = key("group")
    return (
        "sensor",
        "music_source",
        {
            "name": "Music source",
            "icon": "mdi:speaker-multiple",
            "state_topic": state,
            "device_class": "enum",
            "options": ["group", "own"],
            "value_template": f"{{{{ (value_json.{field} or {{}}).playing }}}}",
            "json_attributes_topic": state,
            # "name" is one of Home Assistant's own attributes (2024.3 drops it): the group's name is "group"
            "json_attributes_template": (
                f"{{% set g = value_json.{field} or {{}} %}}"
                "{{ {'group': g.name, 'leader': g.leader, 'playing': g.playing, 'why': g.why} | tojson }}"
            ),
        },
    )


def house_entity(state: str, emotions: Sequence[str]) -> tuple[str, str, dict[str, Any]]:
    """The leader's House emotion: the rooms' emotions combined; its attributes say which rooms count.
    Unavailable while no room counts (a text sensor cannot be made unknown in Home Assistant 2024.3)."""
    field = key("house")
    return (
        "sensor",
        "house_emotion",
        {
            "name": "House emotion",
            "icon": "mdi:home-heart",
            "state_topic": state,
            "device_class": "enum",
            "options": list(emotions),
            "value_template": f"{{{{ (value_json.{field} or {{}}).emotion }}}}",
            "availability_mode": "all",
            "availability": [
                {
                    "topic": state,
                    "value_template": f"{{{{ 'online' if (value_json.{field} or {{}}).emotion is not none else 'offline' }}}}",
                }
            ],
            "json_attributes_topic": state,
            "json_attributes_template": f"{{{{ ((value_json.{field} or {{}}).rooms or {{}}) | tojson }}}}",
        },
    )
