"""The MQTT bridge against a real mosquitto, and its pure message builders."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.servers import Mosquitto, free_port
from moodbox.config import MqttConfig
from moodbox.home import REMOVAL_SETTLE_S, MqttBridge, discovery_messages, parse_command, removal_messages, state_removal_messages
from moodbox.home.state import BoxState
from tests.mqtt_helpers import Recorder, RecordingCommands
from tests.util import scaled, wait_for

MOODS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "calm", "gentle"]
T = "moodbox/testbox"
STATE = {
    "emotion": "happy",
    "confidence": 0.8,
    "scores": {"happy": 0.8, "sad": 0.2},
    "face": True,
    "faces": 1,
    "mood": "happy",
    "mood_select": "auto",
    "playlist": "playlist mood_happy",
    "music": "PLAYING",
    "auto_dj": "ON",
    "privacy": "OFF",
    "fps": 10.0,
    "inference_ms": 1.2,
    "volume": 50,
    "status": "ok",
    "song": None,
    "ts": 0,
}
# what the box publishes before anything was measured: MPD not reached yet, nobody in view
UNKNOWN = {
    **STATE,
    "emotion": None,
    "confidence": None,
    "scores": {},
    "face": None,
    "faces": None,
    "mood": None,
    "playlist": None,
    "music": None,
    "fps": None,
    "inference_ms": None,
    "volume": None,
}


def mqtt_cfg(port: int, **kw) -> MqttConfig:
    return MqttConfig.model_validate(
        {"host": "127.0.0.1", "port": port, "device_id": "testbox", "state_min_interval_s": 0.2, **kw}
    )


@pytest.fixture
def broker(tmp_path):
    with Mosquitto(tmp_path / "mq") as b:
        yield b


@pytest.fixture
def bridge_factory():
    made: list[MqttBridge] = []

    def make(cfg: MqttConfig, commands=None, snapshot=None) -> MqttBridge:
        b = MqttBridge(cfg, commands or RecordingCommands(), MOODS)
        if snapshot is not None:  # the state the daemon's loop handed over before the connection came up
            b.publish_state(BoxState.from_json(snapshot()))
        b.start()
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


EXPECTED_ENTITIES = {
    "sensor/moodbox_testbox/emotion",
    "sensor/moodbox_testbox/confidence",
    "binary_sensor/moodbox_testbox/presence",
    "sensor/moodbox_testbox/mood",
    "select/moodbox_testbox/mood_select",
    "switch/moodbox_testbox/auto_dj",
    "switch/moodbox_testbox/music",
    "switch/moodbox_testbox/privacy",
    "button/moodbox_testbox/skip",
    "number/moodbox_testbox/volume",
    "sensor/moodbox_testbox/fps",
    "sensor/moodbox_testbox/inference_ms",
    "sensor/moodbox_testbox/tracks_analysed",
    "sensor/moodbox_testbox/tracks_total",
    "sensor/moodbox_testbox/last_scan",
    "sensor/moodbox_testbox/status",
}
EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def test_discovery_messages_are_complete():
    cfg = mqtt_cfg(1883)
    msgs = discovery_messages(cfg, MOODS)
    assert {m.topic.removeprefix("homeassistant/").removesuffix("/config") for m in msgs} == EXPECTED_ENTITIES
    ids, names = set(), set()
    for m in msgs:
        assert m.retain
        conf = json.loads(m.payload)
        assert {"topic": f"{T}/availability"} in conf["availability"]
        assert conf["device"]["identifiers"] == ["moodbox_testbox"] and conf["device"]["sw_version"]
        assert conf["device"]["name"] and conf["device"]["model"]
        assert conf["origin"]["name"] == "moodbox"
        assert conf["unique_id"].startswith("moodbox_testbox_")
        ids.add(conf["unique_id"])
        names.add(conf["name"])
    assert len(ids) == len(msgs) and len(names) == len(msgs)  # no two entities share a name
    by = {m.topic.split("/")[-2]: json.loads(m.payload) for m in msgs}
    assert by["mood_select"]["options"] == ["auto", *MOODS]
    assert by["emotion"]["device_class"] == "enum" and by["emotion"]["options"] == EMOTIONS
    assert by["mood"]["device_class"] == "enum" and by["mood"]["options"] == MOODS
    assert by["emotion"]["json_attributes_topic"] == f"{T}/state"
    assert by["presence"]["device_class"] == "occupancy"
    assert by["confidence"]["unit_of_measurement"] == "%"
    assert by["fps"]["entity_category"] == "diagnostic" and by["inference_ms"]["entity_category"] == "diagnostic"
    assert by["auto_dj"]["command_topic"] == f"{T}/auto_dj/set" and by["privacy"]["command_topic"] == f"{T}/privacy/set"
    assert by["music"]["command_topic"] == f"{T}/music/set"
    assert by["skip"]["command_topic"] == f"{T}/skip/set" and by["skip"]["payload_press"] == "PRESS"
    # the entity ids owners already use, on Home Assistant 2024.3 (object_id) and 2026.4+ (default_entity_id)
    for m in msgs:
        component, obj = m.topic.split("/")[1], m.topic.split("/")[-2]
        conf = json.loads(m.payload)
        assert conf["object_id"] == f"testbox_{obj}", conf
        assert conf["default_entity_id"] == f"{component}.testbox_{obj}", conf


def test_entity_ids_are_slugs_for_a_device_id_with_a_hyphen():
    """Home Assistant slugs object_id (``living-room`` -> ``living_room``); default_entity_id must already be one."""
    msgs = discovery_messages(mqtt_cfg(1883, device_id="living-room"), MOODS)
    by = {m.topic.split("/")[-2]: json.loads(m.payload) for m in msgs}
    assert by["emotion"]["default_entity_id"] == "sensor.living_room_emotion"
    assert by["volume"]["object_id"] == "living_room_volume"
    assert all("-" not in json.loads(m.payload)["default_entity_id"] for m in msgs)


def test_removal_clears_old_and_new_configs_then_state_and_availability():
    cfg = mqtt_cfg(1883)
    msgs = removal_messages(cfg, MOODS)
    assert all(m.payload == "" and m.retain for m in msgs)
    topics = {m.topic for m in msgs}
    assert {m.topic for m in discovery_messages(cfg, MOODS)} <= topics
    assert "homeassistant/sensor/testbox/emotion/config" in topics  # the ids before the moodbox_ prefix
    assert not {f"{T}/state", f"{T}/availability"} & topics  # those go only after HA dropped the entities
    late = state_removal_messages(cfg)
    assert {m.topic for m in late} == {f"{T}/state", f"{T}/library", f"{T}/availability"}
    assert all(m.payload == "" and m.retain for m in late)


def _render(template: str, state: dict) -> str:
    jinja2 = pytest.importorskip("jinja2")
    return jinja2.Environment().from_string(template).render(value_json=state)


def test_templates_never_turn_unknown_into_a_value():
    """A null must reach Home Assistant as None (unknown) or make the entity unavailable, never 0 or 'none'."""
    by = {m.topic.split("/")[-2]: json.loads(m.payload) for m in discovery_messages(mqtt_cfg(1883), MOODS)}
    for key in (
        "confidence",
        "volume",
        "fps",
        "inference_ms",
        "presence",
        "music",
    ):
        assert _render(by[key]["value_template"], UNKNOWN) == "None", key
    # the library's figures come on their own topic, only once a scan is known (never null there)
    library = {"tracks_analysed": 180, "tracks_total": 200, "last_scan": "2026-12-07T03:00:12+00:00"}
    assert _render(by["tracks_analysed"]["value_template"], library) == "180"
    assert _render(by["last_scan"]["value_template"], library) == "2026-12-07T03:00:12+00:00"
    assert by["last_scan"]["device_class"] == "timestamp" and by["tracks_total"]["entity_category"] == "diagnostic"
    assert {by[k]["state_topic"] for k in library} == {f"{T}/library"}
    for key, field in (("emotion", "emotion"), ("mood", "mood")):  # enums: unavailable while null
        (extra,) = [a for a in by[key]["availability"] if "value_template" in a]
        assert by[key]["availability_mode"] == "all"
        assert _render(extra["value_template"], UNKNOWN) == "offline" and _render(extra["value_template"], STATE) == "online"
    assert _render(by["confidence"]["value_template"], STATE) == "80.0"
    assert _render(by["volume"]["value_template"], STATE) == "50"
    assert _render(by["presence"]["value_template"], STATE) == "ON"
    assert _render(by["music"]["value_template"], {**STATE, "music": "PAUSED"}) == "OFF"
    assert json.loads(_render(by["emotion"]["json_attributes_template"], UNKNOWN)) == {}


@pytest.mark.parametrize(
    "topic, payload, expected",
    [
        ("auto_dj/set", b"ON", ("auto_dj", True)),
        ("auto_dj/set", b"off", ("auto_dj", False)),
        ("privacy/set", b" ON\n", ("privacy", True)),
        ("mood/set", b"calm", ("mood", "calm")),
        ("music/set", b"OFF", ("music", False)),
        ("music/set", b"ON", ("music", True)),
        ("mood/set", b"auto", ("mood", None)),
        ("skip/set", b"PRESS", ("skip", None)),
        ("volume/set", b"42.4", ("volume", 42)),
    ],
)
def test_parse_valid_commands(topic, payload, expected):
    cmd = parse_command(T, f"{T}/{topic}", payload, MOODS)
    assert (cmd.name, cmd.value) == expected


@pytest.mark.parametrize(
    "topic, payload, why",
    [
        ("auto_dj/set", b"MAYBE", "expected ON or OFF"),
        ("mood/set", b"jolly", "unknown mood"),
        ("volume/set", b"loud", "expected a number"),
        ("volume/set", b"150", "outside 0-100"),
        ("privacy/set", b"\xff\xfe", "not UTF-8"),
        ("skip/set", b"x" * 500, "too long"),
        ("reboot/set", b"1", "unknown command"),
        ("skip/set", b"", "expected PRESS"),
        ("skip/set", b"OFF", "expected PRESS"),
        ("skip/set", b'{"a":1}', "expected PRESS"),
        ("skip/set", b"\x00", "expected PRESS"),
        ("music/set", b"PLAY", "expected ON or OFF"),
        ("volume/set", b"nan", "outside"),
    ],
)
def test_parse_rejects(topic, payload, why):
    with pytest.raises(ValueError, match=why):
        parse_command(T, f"{T}/{topic}", payload, MOODS)


def test_online_discovery_state_and_clean_offline(broker, bridge_factory):
    rec = Recorder(broker.port)
    b = bridge_factory(mqtt_cfg(broker.port), snapshot=lambda: dict(STATE))
    wait_for(lambda: rec.last(f"{T}/availability") == b"online", what="online")
    wait_for(lambda: len(rec.topics("homeassistant/")) == len(EXPECTED_ENTITIES), what="discovery")
    state = json.loads(wait_for(lambda: rec.last(f"{T}/state"), what="state"))
    for key in ("emotion", "confidence", "scores", "face", "mood", "playlist", "auto_dj", "privacy", "fps", "inference_ms", "ts"):
        assert key in state
    assert not any(b"jpeg" in p.lower() or len(p) > 4000 for _, p, _ in rec.messages)  # no image data, ever
    b.stop()
    wait_for(lambda: rec.last(f"{T}/availability") == b"offline", what="offline after a clean stop")
    # retained: a newcomer sees it too
    late = Recorder(broker.port, [f"{T}/availability"])
    wait_for(lambda: late.last(f"{T}/availability") == b"offline", what="retained offline")


def test_state_rate_limited_and_periodic(broker, bridge_factory):
    rec = Recorder(broker.port, [f"{T}/state"])
    cfg = mqtt_cfg(broker.port, state_interval_s=1.0, state_min_interval_s=0.5)
    b = bridge_factory(cfg)
    b.connected.wait(5)
    for i in range(300):  # a 30 fps stream of changes for 10 s, fed in 1.5 s
        b.publish_state(BoxState.from_json({**STATE, "fps": float(i)}))
        time.sleep(0.005)
    time.sleep(0.8)
    got = [json.loads(p) for p in rec.on(f"{T}/state")]
    assert 2 <= len(got) <= 6, len(got)
    assert got[-1]["fps"] == 299.0  # the last change is never lost
    n = len(got)
    time.sleep(2.3)
    assert len(rec.on(f"{T}/state")) >= n + 1  # re-published on the interval without changes


def test_commands_and_retained_ignored(broker, bridge_factory):
    cmds = RecordingCommands()
    rec = Recorder(broker.port)
    b = bridge_factory(mqtt_cfg(broker.port), commands=cmds)
    b.connected.wait(5)
    time.sleep(0.2)
    rec.publish(f"{T}/auto_dj/set", "OFF")
    rec.publish(f"{T}/privacy/set", "ON")
    rec.publish(f"{T}/mood/set", "calm")
    rec.publish(f"{T}/skip/set", "PRESS")
    rec.publish(f"{T}/volume/set", "30")
    rec.publish(f"{T}/music/set", "OFF")
    time.sleep(0.3)  # the same topic twice within command_interval_s: the second would wait
    rec.publish(f"{T}/mood/set", "auto")
    wait_for(lambda: len(cmds.calls) == 7, what="seven commands")
    assert cmds.calls == [
        ("auto_dj", False),
        ("privacy", True),
        ("mood", "calm"),
        ("skip", None),
        ("volume", 30),
        ("music", False),
        ("mood", None),
    ]
    rec.publish(f"{T}/privacy/set", "OFF", retain=True)
    b2 = MqttBridge(mqtt_cfg(broker.port, device_id="testbox"), RecordingCommands(), MOODS)
    b2.start()  # a restarting box receives the retained command from the broker
    b2.connected.wait(5)
    time.sleep(0.5)
    b2.stop()
    assert b2.submit.calls == [] and b2.ignored >= 1
    rec.publish(f"{T}/privacy/set", "", retain=True)  # clean the broker


def test_fuzzed_payloads_change_nothing(broker, bridge_factory):
    cmds = RecordingCommands()
    rec = Recorder(broker.port)
    b = bridge_factory(mqtt_cfg(broker.port), commands=cmds)
    b.connected.wait(5)
    rng = random.Random(3)
    valid = {b"ON", b"OFF", b"on", b"off", b"auto", *(m.encode() for m in MOODS)}
    sent = 0
    for i in range(1000):
        kind = rng.choice(["auto_dj", "privacy", "mood", "volume", "bogus", "nested/deep"])
        n = rng.choice([0, 1, 3, 20, 200, 5000])
        payload = (
            bytes(rng.getrandbits(8) for _ in range(n))
            if rng.random() < 0.7
            else rng.choice(['{"a":1}', "null", "-5", "1e9", "ON ON", "\u00e9t\u00e9"]).encode()
        )
        if payload.strip() in valid or (kind == "volume" and payload.strip().replace(b".", b"").isdigit()):
            continue
        rec.c.publish(f"{T}/{kind}/set", payload, qos=0)
        sent += kind != "nested/deep"  # not a command topic: the bridge is not even subscribed to it
    rec.publish(f"{T}/skip/set", "PRESS")  # still alive and listening after the flood
    wait_for(lambda: cmds.calls == [("skip", None)], timeout=10, what="the one valid command")
    assert b.ignored >= 0.9 * sent


def test_broker_restart_restores_everything_within_5s(broker, bridge_factory):
    b = bridge_factory(mqtt_cfg(broker.port), snapshot=lambda: dict(STATE))
    b.connected.wait(5)
    broker.kill()
    wait_for(lambda: not b.connected.is_set(), what="the bridge to notice")
    time.sleep(1.0)
    broker.start()
    t0 = time.monotonic()
    rec = Recorder(broker.port)  # the broker kept nothing (no persistence): all must be sent again
    wait_for(lambda: rec.last(f"{T}/availability") == b"online", what="online again")
    wait_for(lambda: len(rec.topics("homeassistant/")) == len(EXPECTED_ENTITIES), what="discovery again")
    wait_for(lambda: rec.last(f"{T}/state"), what="state again")
    assert time.monotonic() - t0 < scaled(5.0)


def test_home_assistant_restart_triggers_rediscovery(broker, bridge_factory):
    b = bridge_factory(mqtt_cfg(broker.port))
    b.connected.wait(5)
    rec = Recorder(broker.port, ["homeassistant/+/moodbox_testbox/+/config"])
    wait_for(lambda: len(rec.messages) == len(EXPECTED_ENTITIES), what="retained discovery")
    rec.clear()
    rec.publish("homeassistant/status", "online")  # within rediscover_min_s of the first: it may wait that long
    wait_for(lambda: len(rec.messages) == len(EXPECTED_ENTITIES), timeout=8, what="discovery re-published")


def test_last_will_when_the_process_is_killed(broker, tmp_path):
    script = tmp_path / "box.py"
    script.write_text(
        "import time, sys\n"
        "from moodbox.config import MqttConfig\nfrom moodbox.home import MqttBridge\n"
        "from tests.mqtt_helpers import RecordingCommands\n"
        f"b = MqttBridge(MqttConfig(host='127.0.0.1', port={broker.port}, device_id='testbox'), RecordingCommands(), ['happy'])\n"
        "b.start(); b.connected.wait(5); print('up', flush=True); time.sleep(60)\n"
    )
    rec = Recorder(broker.port, [f"{T}/availability"])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout.readline().strip() == b"up"
        wait_for(lambda: rec.last(f"{T}/availability") == b"online", what="online")
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        wait_for(lambda: rec.last(f"{T}/availability") == b"offline", what="the last will")
    finally:
        proc.kill()


def test_broker_down_at_start_then_up(tmp_path, bridge_factory):
    port = free_port()
    b = bridge_factory(mqtt_cfg(port), snapshot=lambda: dict(STATE))
    wait_for(lambda: b.error, what="an error")
    assert f"127.0.0.1:{port}" in b.error
    broker = Mosquitto(tmp_path / "late")
    broker.port = port
    broker.start()
    try:
        rec = Recorder(port)
        wait_for(lambda: rec.last(f"{T}/availability") == b"online", timeout=6, what="online once the broker is up")
    finally:
        broker.stop()


def test_username_password(tmp_path, bridge_factory):
    with Mosquitto(tmp_path / "auth", users={"box": "right", "ha": "ha"}) as broker:
        bad = bridge_factory(mqtt_cfg(broker.port, username="box", password="wrong"))
        err = wait_for(lambda: bad.error, what="an auth error")
        assert "refused the connection" in err and "MOODBOX_MQTT_PASSWORD" in err
        bad.stop()
        good = bridge_factory(mqtt_cfg(broker.port, username="box", password="right"))
        assert good.connected.wait(5) and good.error is None
        rec = Recorder(broker.port, [f"{T}/availability"], username="ha", password="ha")
        wait_for(lambda: rec.last(f"{T}/availability") == b"online", what="online with auth")


def test_discovery_remove_command_clears_retained_configs_state_and_availability(broker, bridge_factory, tmp_path):
    b = bridge_factory(mqtt_cfg(broker.port), snapshot=lambda: dict(STATE))
    b.connected.wait(5)
    b.stop()
    rec = Recorder(broker.port)
    wait_for(lambda: rec.last(f"{T}/state") and rec.last(f"{T}/availability") == b"offline", what="retained state")
    rec.publish("homeassistant/sensor/testbox/emotion/config", '{"name": "old"}', retain=True)  # an old version's config
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"mqtt: {{host: 127.0.0.1, port: {broker.port}, device_id: testbox}}\n")
    watch = Recorder(broker.port, ["homeassistant/#", f"{T}/#"])
    wait_for(lambda: any(t.endswith("/config") for t, _, _ in watch.messages), what="the retained configs")
    watch.clear()
    proc = subprocess.run(
        [sys.executable, "-m", "moodbox", "discovery", "--remove", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert "removed" in proc.stdout and f"{T}/state" in proc.stdout
    # Home Assistant drops the entities before their state is cleared (else their templates render '' as errors)
    wait_for(lambda: watch.last(f"{T}/availability") == b"", what="the state cleared")
    order = [t for t, _, _ in watch.messages]
    last_config = max(i for i, t in enumerate(order) if t.endswith("/config"))
    cleared = min(order.index(f"{T}/state"), order.index(f"{T}/availability"))
    assert last_config < cleared, order
    gap = watch.arrived[cleared] - watch.arrived[last_config]
    assert gap >= REMOVAL_SETTLE_S * 0.9, f"the state was cleared {gap:.2f} s after the configs"
    watch.close()
    late = Recorder(broker.port, ["homeassistant/#", f"{T}/#"])
    time.sleep(0.5)
    assert late.messages == []  # nothing retained: no ghost entities, no stale state
    cfg.write_text(f"mqtt: {{host: 127.0.0.1, port: {free_port()}, device_id: testbox}}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "moodbox", "discovery", "--config", str(cfg)], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 1 and "is unreachable" in proc.stderr and "Traceback" not in proc.stderr


def test_tls_with_ca_and_client_certificate(tmp_path, bridge_factory):
    from devtools.servers import make_certificates

    certs = make_certificates(tmp_path / "certs")
    tls = {"ca": certs["ca"], "cert": certs["cert"], "key": certs["key"], "require_certificate": True}
    with Mosquitto(tmp_path / "tls", tls=tls) as broker:
        without_cert = bridge_factory(mqtt_cfg(broker.port, tls={"enabled": True, "ca_file": str(certs["ca"])}))
        good = bridge_factory(
            mqtt_cfg(
                broker.port,
                device_id="tlsbox",
                tls={
                    "enabled": True,
                    "ca_file": str(certs["ca"]),
                    "cert_file": str(certs["client_cert"]),
                    "key_file": str(certs["client_key"]),
                },
            )
        )
        assert good.connected.wait(5) and good.error is None
        time.sleep(1.0)
        assert not without_cert.connected.is_set()  # the broker wants a client certificate


def test_retained_command_reaching_a_live_box_is_ignored(broker, bridge_factory):
    """With MQTT 3.1.1 the broker clears the retain flag on live delivery, so a retained publish looked
    like a fresh command; MQTT 5's retain-as-published keeps the flag."""
    cmds = RecordingCommands()
    rec = Recorder(broker.port)
    b = bridge_factory(mqtt_cfg(broker.port), commands=cmds)
    b.connected.wait(5)
    time.sleep(0.3)
    for topic, payload in (("privacy/set", "OFF"), ("skip/set", "PRESS"), ("volume/set", "90"), ("music/set", "OFF")):
        rec.publish(f"{T}/{topic}", payload, retain=True)
    wait_for(lambda: b.ignored >= 4, what="the retained commands to be ignored")
    rec.publish(f"{T}/mood/set", "calm")  # a plain one still acts
    wait_for(lambda: cmds.calls == [("mood", "calm")], what="the fresh command")
    for topic in ("privacy/set", "skip/set", "volume/set", "music/set"):
        rec.publish(f"{T}/{topic}", "", retain=True)


def test_command_flood_is_rate_limited_and_the_last_value_wins(broker, bridge_factory):
    cmds = RecordingCommands()
    rec = Recorder(broker.port)
    b = bridge_factory(mqtt_cfg(broker.port, command_interval_s=0.25), commands=cmds)
    b.connected.wait(5)
    t0 = time.monotonic()
    for i in range(500):
        rec.c.publish(f"{T}/volume/set", str(i % 100), qos=0)
        rec.c.publish(f"{T}/skip/set", "PRESS", qos=0)
    rec.publish(f"{T}/volume/set", "37")
    wait_for(lambda: cmds.calls and [c for c in cmds.calls if c[0] == "volume"][-1] == ("volume", 37), what="the last volume")
    elapsed = time.monotonic() - t0
    time.sleep(0.5)
    volumes = [c for c in cmds.calls if c[0] == "volume"]
    skips = [c for c in cmds.calls if c[0] == "skip"]
    limit = 2 + (elapsed + 0.5) / 0.25
    assert len(volumes) <= limit and len(skips) <= limit, (len(volumes), len(skips), elapsed)
    assert b.gate.waiting() == 0


def test_home_assistant_online_flood_republishes_at_most_every_few_seconds(broker, bridge_factory):
    b = bridge_factory(mqtt_cfg(broker.port, rediscover_min_s=2.0))
    b.connected.wait(5)
    rec = Recorder(broker.port, ["homeassistant/+/moodbox_testbox/+/config"])
    wait_for(lambda: len(rec.messages) == len(EXPECTED_ENTITIES), what="retained discovery")
    time.sleep(2.0)
    rec.clear()
    first = b.discoveries
    for _ in range(2000):
        rec.c.publish("homeassistant/status", "online", qos=0)
    rec.publish("homeassistant/status", "online")
    wait_for(lambda: len(rec.messages) >= len(EXPECTED_ENTITIES), what="discovery re-published")
    time.sleep(2.5)  # one more may follow when the interval is up, no more
    assert 1 <= b.discoveries - first <= 2, b.discoveries - first
    assert len(rec.messages) <= 2 * len(EXPECTED_ENTITIES)


def test_refused_password_is_retried_with_a_growing_pause(tmp_path, bridge_factory):
    with Mosquitto(tmp_path / "auth", users={"box": "right"}) as broker:
        bad = bridge_factory(mqtt_cfg(broker.port, username="box", password="wrong", reconnect_max_s=1))
        err = wait_for(lambda: bad.error, what="an auth error")
        assert "refused the connection" in err and "MOODBOX_MQTT_PASSWORD" in err and "growing pause" in err
        time.sleep(7.0)
        attempts = broker.log.read_text().count("New connection from")
        bad.stop()
        assert attempts <= 4, f"{attempts} attempts in 7 s: no back-off"


def test_tls_certificate_failure_is_named(tmp_path, bridge_factory):
    from devtools.servers import make_certificates

    certs = make_certificates(tmp_path / "certs")
    other = make_certificates(tmp_path / "other")  # a CA that did not sign the broker's certificate
    tls = {"ca": certs["ca"], "cert": certs["cert"], "key": certs["key"]}
    with Mosquitto(tmp_path / "tls", tls=tls) as broker:
        b = bridge_factory(mqtt_cfg(broker.port, tls={"enabled": True, "ca_file": str(other["ca"])}))
        err = wait_for(lambda: b.error, what="a TLS error")
        assert "certificate" in err and "rejected" in err and f"127.0.0.1:{broker.port}" in err, err
        assert "unreachable" not in err


def test_commands_are_logged_with_their_value(broker, bridge_factory, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="moodbox.home.bridge")
    cmds = RecordingCommands()
    rec = Recorder(broker.port)
    b = bridge_factory(mqtt_cfg(broker.port), commands=cmds)
    b.connected.wait(5)
    wait_for(lambda: rec.last(f"{T}/availability") == b"online", what="online (it subscribes before it says so)")
    rec.publish(f"{T}/mood/set", "auto")
    rec.publish(f"{T}/privacy/set", "on")
    wait_for(lambda: len(cmds.calls) == 2, what="two commands")
    lines = [r.getMessage() for r in caplog.records]
    assert "command from MQTT: mood auto" in lines and "command from MQTT: privacy ON" in lines


def test_discovery_command_announces_the_configured_models_labels(broker, tmp_path):
    """`moodbox discovery` must give the emotion sensor the options the daemon announces: the labels of
    the configured model, not the seven FER2013 ones (Home Assistant rejects a state outside them)."""
    import json as _json
    import shutil

    from moodbox.vision.emotions import DEFAULT_MODEL

    model = tmp_path / "m.tflite"
    shutil.copy(DEFAULT_MODEL, model)
    meta = _json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    meta["labels"] = ["cross", "yuck", "scared", "glad", "down", "wow", "calm"]
    model.with_suffix(".json").write_text(_json.dumps(meta))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"mqtt: {{host: 127.0.0.1, port: {broker.port}, device_id: testbox}}\nmodel: {{path: {model}}}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "moodbox", "discovery", "--config", str(cfg)], capture_output=True, text=True, timeout=scaled(60)
    )
    assert proc.returncode == 0, proc.stderr
    rec = Recorder(broker.port, ["homeassistant/#"])
    conf = wait_for(lambda: rec.last("homeassistant/sensor/moodbox_testbox/emotion/config"), what="emotion config")
    assert _json.loads(conf)["options"] == meta["labels"]


# --- the state and the commands, each defined once (issue 25) ------------------------------------------


def test_templates_read_only_fields_of_the_published_state():
    import re as _re

    from moodbox.home.state import KEYS, LIBRARY_KEYS

    read, library = set(), set()
    for m in discovery_messages(mqtt_cfg(1883), MOODS):
        fields = set(_re.findall(r"value_json\.(\w+)", m.payload))
        (library if json.loads(m.payload).get("state_topic") == f"{T}/library" else read).update(fields)
    assert read and read <= KEYS, read - KEYS
    assert library == LIBRARY_KEYS


def test_every_command_in_the_table_has_its_entity_and_no_other_entity_sends_one():
    from moodbox.home.commands import COMMAND_TABLE

    by = {
        (m.topic.split("/")[1], m.topic.split("/")[-2]): json.loads(m.payload) for m in discovery_messages(mqtt_cfg(1883), MOODS)
    }
    for spec in COMMAND_TABLE:
        assert by[(spec.component, spec.object_id)]["command_topic"] == f"{T}/{spec.word}/set", spec.word
    senders = {k for k, conf in by.items() if "command_topic" in conf}
    assert senders == {(s.component, s.object_id) for s in COMMAND_TABLE}


def test_the_docs_list_every_command_and_every_state_field():
    import re as _re

    from moodbox.home.commands import COMMANDS
    from moodbox.home.state import KEYS
    from tests.conftest import ROOT

    text = (ROOT / "docs" / "home-assistant.md").read_text()
    assert set(_re.findall(r"^\| `T/(\w+)/set` \|", text, _re.M)) == set(COMMANDS)
    example = json.loads(_re.search(r"```json\n(.*?)```", text, _re.S).group(1))
    assert set(example) == KEYS


def test_the_state_json_is_the_dataclass_with_its_null_rules():
    from moodbox.home.state import BoxState

    s = BoxState(emotion="happy", confidence=0.8, scores={"happy": 0.8}, face=True, faces=1, auto_dj=False, privacy=True, ts=5)
    data = json.loads(s.payload())
    assert data["auto_dj"] == "OFF" and data["privacy"] == "ON"
    assert data["volume"] is None and data["music"] is None and data["fps"] is None  # unknown is null, never 0
    assert BoxState.from_json(data) == s
    assert BoxState(ts=1).content() == BoxState(ts=2).content()  # the timestamp alone is no change


def test_library_figures_are_retained_on_their_own_topic_only_once_a_scan_is_known(broker, bridge_factory):
    """Home Assistant 2024.3 warns on every state message whose timestamp sensor renders null: the scan's
    figures are not in the state, and nothing is sent before the first scan."""
    from moodbox.home.state import LibraryState

    rec = Recorder(broker.port)
    b = bridge_factory(mqtt_cfg(broker.port), snapshot=lambda: dict(STATE))
    wait_for(lambda: rec.last(f"{T}/state"), what="state")
    b.publish_library(None)
    time.sleep(0.3)
    assert rec.on(f"{T}/library") == [] and "last_scan" not in json.loads(rec.last(f"{T}/state") or b"{}")
    figures = LibraryState(180, 200, "2026-12-07T03:00:12+00:00")
    b.publish_library(figures)
    b.publish_library(figures)  # unchanged: not sent again
    got = wait_for(lambda: rec.on(f"{T}/library"), what="the library figures")
    time.sleep(0.3)
    assert [json.loads(p) for p in rec.on(f"{T}/library")] == [
        {"tracks_analysed": 180, "tracks_total": 200, "last_scan": "2026-12-07T03:00:12+00:00"}
    ], got
    late = Recorder(broker.port, [f"{T}/library"])  # retained: Home Assistant restarting gets it too
    wait_for(lambda: late.last(f"{T}/library"), what="the retained figures")
