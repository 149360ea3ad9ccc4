"""Home Assistant over MQTT (docs/home-assistant.md), one job per module:

- :mod:`.state`: the published state, defined once (fields, JSON names, null rules)
- :mod:`.commands`: the command table (topic word, parser, handler, entity), parsing and the rate gate
- :mod:`.discovery`: the discovery configs and their removal (pure functions of the config)
- :mod:`.client`: the paho MQTT 5 client, TLS, failures named for what they are, one-shot publishing
- :mod:`.bridge`: the live connection: availability, state, commands, re-discovery
"""

from moodbox.home.bridge import MqttBridge
from moodbox.home.client import describe_connect_failure, make_client, publish_once
from moodbox.home.commands import COMMAND_TABLE, COMMANDS, Command, CommandGate, Commands, parse_command
from moodbox.home.discovery import (
    REMOVAL_SETTLE_S,
    Message,
    base_topic,
    device_block,
    discovery_messages,
    legacy_removal_messages,
    node_id,
    removal_messages,
    state_removal_messages,
)
from moodbox.home.state import BoxState

__all__ = [
    "COMMANDS",
    "COMMAND_TABLE",
    "REMOVAL_SETTLE_S",
    "BoxState",
    "Command",
    "CommandGate",
    "Commands",
    "Message",
    "MqttBridge",
    "base_topic",
    "describe_connect_failure",
    "device_block",
    "discovery_messages",
    "legacy_removal_messages",
    "make_client",
    "node_id",
    "parse_command",
    "publish_once",
    "removal_messages",
    "state_removal_messages",
]
