"""The MQTT bridge against a real mosquitto (DESIGN §8), and its pure message builders."""

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

from moodbox.config import MqttConfig
from moodbox.mqtt import MqttBridge, discovery_messages, parse_command, removal_messages
from tests.mqtt_helpers import Recorder, RecordingCommands
from moodbox.devservers import Mosquitto, free_port
from tests.util import wait_for

MOODS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "calm", "gentle"]
T = "moodbox/testbox"
STATE = {
    "emotion": "happy", "confidence": 0.8, "scores": {"happy": 0.8, "sad": 0.2}, "face": True, "mood": "happy",
    "mood_select": "auto", "playlist": "playlist mood_happy", "auto_dj": "ON", "privacy": "OFF", "fps": 10.0,
    "inference_ms": 1.2, "volume": 50, "status": "ok", "song": None, "ts": 0,
}




def mqtt_cfg(port: int, **kw) -> MqttConfig:
    return MqttConfig.model_validate({"host": "127.0.0.1", "port": port, "device_id": "testbox", "state_min_interval_s": 0.2, **kw})


@pytest.fixture
def broker(tmp_path):
    with Mosquitto(tmp_path / "mq") as b:
        yield b


@pytest.fixture
def bridge_factory():
    made: list[MqttBridge] = []

    def make(cfg: MqttConfig, commands=None, snapshot=None) -> MqttBridge:
        b = MqttBridge(cfg, commands or RecordingCommands(), MOODS, snapshot=snapshot)
        b.start()
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


EXPECTED_ENTITIES = {
    "sensor/testbox/emotion", "sensor/testbox/confidence", "sensor/testbox/mood", "select/testbox/mood_select",
    "switch/testbox/auto_dj", "switch/testbox/privacy", "button/testbox/skip", "number/testbox/volume",
    "sensor/testbox/fps", "sensor/testbox/inference_ms", "sensor/testbox/status",
}


def test_discovery_messages_are_complete():
    cfg = mqtt_cfg(1883)
    msgs = discovery_messages(cfg, MOODS)
    assert {m.topic.removeprefix("homeassistant/").removesuffix("/config") for m in msgs} == EXPECTED_ENTITIES
    ids = set()
    for m in msgs:
        assert m.retain
        conf = json.loads(m.payload)
        assert conf["availability_topic"] == f"{T}/availability"
        assert conf["device"]["identifiers"] == ["testbox"] and conf["device"]["sw_version"]
        assert conf["device"]["name"] and conf["device"]["model"]
        assert conf["origin"]["name"] == "moodbox"
        ids.add(conf["unique_id"])
    assert len(ids) == len(msgs)
    by = {m.topic.split("/")[-2]: json.loads(m.payload) for m in msgs}
    assert by["mood_select"]["options"] == ["auto", *MOODS]
    assert by["emotion"]["json_attributes_topic"] == f"{T}/state"
    assert by["confidence"]["unit_of_measurement"] == "%"
    assert by["fps"]["entity_category"] == "diagnostic" and by["inference_ms"]["entity_category"] == "diagnostic"
    assert by["auto_dj"]["command_topic"] == f"{T}/auto_dj/set" and by["privacy"]["command_topic"] == f"{T}/privacy/set"
    assert by["skip"]["command_topic"] == f"{T}/skip/set"
    assert all(m.payload == "" and m.retain for m in removal_messages(cfg, MOODS))


@pytest.mark.parametrize(
    "topic, payload, expected",
    [
        ("auto_dj/set", b"ON", ("auto_dj", True)), ("auto_dj/set", b"off", ("auto_dj", False)),
        ("privacy/set", b" ON\n", ("privacy", True)), ("mood/set", b"calm", ("mood", "calm")),
        ("mood/set", b"auto", ("mood", None)), ("skip/set", b"PRESS", ("skip", None)), ("volume/set", b"42.4", ("volume", 42)),
    ],
)
def test_parse_valid_commands(topic, payload, expected):
    cmd = parse_command(T, f"{T}/{topic}", payload, MOODS)
    assert (cmd.name, cmd.value) == expected


@pytest.mark.parametrize(
    "topic, payload, why",
    [
        ("auto_dj/set", b"MAYBE", "expected ON or OFF"), ("mood/set", b"jolly", "unknown mood"),
        ("volume/set", b"loud", "expected a number"), ("volume/set", b"150", "outside 0-100"),
        ("privacy/set", b"\xff\xfe", "not UTF-8"), ("skip/set", b"x" * 500, "too long"), ("reboot/set", b"1", "unknown command"),
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
        b.publish_state({**STATE, "fps": float(i)})
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
    rec.publish(f"{T}/mood/set", "auto")
    wait_for(lambda: len(cmds.calls) == 6, what="six commands")
    assert cmds.calls == [("auto_dj", False), ("privacy", True), ("mood", "calm"), ("skip", None), ("volume", 30), ("mood", None)]
    rec.publish(f"{T}/privacy/set", "OFF", retain=True)
    b2 = MqttBridge(mqtt_cfg(broker.port, device_id="testbox"), RecordingCommands(), MOODS)
    b2.start()  # a restarting box receives the retained command from the broker
    b2.connected.wait(5)
    time.sleep(0.5)
    b2.stop()
    assert b2.commands.calls == [] and b2.ignored >= 1
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
        payload = bytes(rng.getrandbits(8) for _ in range(n)) if rng.random() < 0.7 else rng.choice(["{\"a\":1}", "null", "-5", "1e9", "ON ON", "\u00e9t\u00e9"]).encode()
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
    assert time.monotonic() - t0 < 5.0


def test_home_assistant_restart_triggers_rediscovery(broker, bridge_factory):
    b = bridge_factory(mqtt_cfg(broker.port))
    b.connected.wait(5)
    rec = Recorder(broker.port, ["homeassistant/+/testbox/+/config"])
    wait_for(lambda: len(rec.messages) == len(EXPECTED_ENTITIES), what="retained discovery")
    rec.clear()
    rec.publish("homeassistant/status", "online")
    wait_for(lambda: len(rec.messages) == len(EXPECTED_ENTITIES), what="discovery re-published")


def test_last_will_when_the_process_is_killed(broker, tmp_path):
    script = tmp_path / "box.py"
    script.write_text(
        "import time, sys\n"
        "from moodbox.config import MqttConfig\nfrom moodbox.mqtt import MqttBridge\n"
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


def test_discovery_remove_command_clears_retained_configs(broker, bridge_factory, tmp_path):
    b = bridge_factory(mqtt_cfg(broker.port))
    b.connected.wait(5)
    b.stop()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"mqtt: {{host: 127.0.0.1, port: {broker.port}, device_id: testbox}}\n")
    proc = subprocess.run([sys.executable, "-m", "moodbox", "discovery", "--remove", "--config", str(cfg)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "removed 11" in proc.stdout
    late = Recorder(broker.port, ["homeassistant/#"])
    time.sleep(0.5)
    assert late.messages == []  # nothing retained: no ghost entities
    cfg.write_text(f"mqtt: {{host: 127.0.0.1, port: {free_port()}, device_id: testbox}}\n")
    proc = subprocess.run([sys.executable, "-m", "moodbox", "discovery", "--config", str(cfg)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and "is unreachable" in proc.stderr and "Traceback" not in proc.stderr


def test_tls_with_ca_and_client_certificate(tmp_path, bridge_factory):
    from moodbox.devservers import make_certificates

    certs = make_certificates(tmp_path / "certs")
    tls = {"ca": certs["ca"], "cert": certs["cert"], "key": certs["key"], "require_certificate": True}
    with Mosquitto(tmp_path / "tls", tls=tls) as broker:
        without_cert = bridge_factory(mqtt_cfg(broker.port, tls={"enabled": True, "ca_file": str(certs["ca"])}))
        good = bridge_factory(mqtt_cfg(
            broker.port, device_id="tlsbox",
            tls={"enabled": True, "ca_file": str(certs["ca"]), "cert_file": str(certs["client_cert"]), "key_file": str(certs["client_key"])},
        ))
        assert good.connected.wait(5) and good.error is None
        time.sleep(1.0)
        assert not without_cert.connected.is_set()  # the broker wants a client certificate
