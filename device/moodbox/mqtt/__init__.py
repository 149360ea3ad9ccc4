"""Home Assistant over MQTT (DESIGN §5), one job per module:

- :mod:`.discovery`: the discovery configs and their removal (pure functions of the config)
- :mod:`.commands`: command parsing (pure) and the per-topic rate limit
- :mod:`.client`: the paho MQTT 5 client, TLS, failures named for what they are, one-shot publishing
- :mod:`.bridge`: the live connection: availability, state, commands, re-discovery
"""

from moodbox.mqtt.bridge import MqttBridge, state_payload
from moodbox.mqtt.client import describe_connect_failure, make_client, publish_once
from moodbox.mqtt.commands import COMMANDS, Command, CommandGate, Commands, parse_command
from moodbox.mqtt.discovery import (
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

__all__ = [
    "COMMANDS", "REMOVAL_SETTLE_S", "Command", "CommandGate", "Commands", "Message", "MqttBridge", "base_topic", "describe_connect_failure",
    "device_block", "discovery_messages", "legacy_removal_messages", "make_client", "node_id", "parse_command",
    "publish_once", "removal_messages", "state_payload", "state_removal_messages",
]
