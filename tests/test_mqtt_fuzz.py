"""Hostile MQTT input against `moodbox run` with a real mosquitto and mpd (issue 15): thousands of
malformed, oversized, binary and retained messages on every command topic and on unknown topics change
nothing; the valid commands that follow still act."""

from __future__ import annotations

import json
import random
import time

import pytest

from devtools.servers import make_library, write_m3u
from moodbox.home import parse_command
from tests.box import Box, T
from tests.mqtt_helpers import Recorder
from tests.util import wait_for

MOODS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "calm", "gentle"]
TOPICS = ["auto_dj", "privacy", "mood", "music", "skip", "volume"]
UNKNOWN = [
    f"{T}/reboot/set",
    f"{T}/state/set",
    f"{T}/privacy",
    f"{T}/a/b/set",
    f"{T}/",
    f"{T}/availability",
    "moodbox/other/privacy/set",
    "homeassistant/status",
    f"{T}/priv acy/set",
    f"{T}/privacy/set/x",
    f"{T}/PRIVACY/set",
]
TRACKS = [
    {"file": f"{g.lower()}/{g.lower()}{i}.ogg", "artist": f"{g} Band", "title": f"{g} {i}", "genre": g}
    for g in ("Pop", "Jazz", "Ambient")
    for i in range(1, 3)
]


@pytest.fixture(scope="module")
def long_library(tmp_path_factory):
    music, playlists = make_library(tmp_path_factory.mktemp("fuzzlib"), TRACKS, seconds=120.0)
    write_m3u(playlists, "mood_neutral", [t["file"] for t in TRACKS if t["genre"] == "Jazz"])
    write_m3u(playlists, "mood_happy", [t["file"] for t in TRACKS if t["genre"] == "Pop"])
    return music, playlists


def rss_kb(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def junk(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.45:
        return bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 1, 2, 5, 20, 127, 128, 129, 300])))
    if kind < 0.5:
        return rng.choice([b"x", b"\x00", b"ON"]) * rng.choice([1000, 100_000])  # oversized
    return rng.choice(
        [
            b"",
            b" ",
            b"\x00",
            b"ON\x00",
            b"OFF OFF",
            b"onn",
            b"PRESSED",
            b"press ",
            b"1",
            b"true",
            b"null",
            b"{}",
            b'{"state":"ON"}',
            b"-1",
            b"101",
            b"1e9",
            b"nan",
            b"inf",
            b"-inf",
            b"0x10",
            b"\xef\xbb\xbfON",
            "\u00e9t\u00e9".encode(),
            b"auto ",
            b"AUTO",
            b"Calm",
            b"happy\n\x00",
            b"../../etc",
            b"%s%n",
            b"\xff\xfe\xfd",
            b"ON\r\nOFF",
            b"50%",
            b"\t\n",
            b"PRESS\x00",
        ]
    )


def test_fuzz_changes_nothing_but_valid_commands(tmp_path, long_library):
    state_dir = tmp_path / "box" / "state"
    state_dir.mkdir(parents=True)
    # privacy ON: no face can change the state behind the fuzzer's back; auto-DJ OFF: MPD is left alone
    (state_dir / "settings.json").write_text(json.dumps({"privacy": True, "auto_dj": False}))
    box = Box(tmp_path / "box", long_library, tmp_path / "unused.mp4")
    c = box.mpd_client()
    c.clear()
    c.add("jazz/jazz1.ogg")
    c.add("jazz/jazz2.ogg")
    c.setvol(70)
    c.play()
    rec = Recorder(box.broker.port)
    try:
        box.start()
        wait_for(lambda: rec.last(f"{T}/availability") == b"online", timeout=10, what="online")
        time.sleep(1.0)

        def mpd_now() -> dict:
            s = c.status()
            return {
                "state": s["state"],
                "volume": s.get("volume"),
                "song": c.currentsong().get("file"),
                "queue": len(c.playlistinfo()),
            }

        def box_now() -> dict:
            s = json.loads(rec.last(f"{T}/state"))
            return {k: s[k] for k in ("privacy", "auto_dj", "mood_select", "volume", "music")}

        mpd_before, box_before = mpd_now(), box_now()
        settings_before = (state_dir / "settings.json").read_text()
        rng = random.Random(15)
        sent = retained = 0
        for i in range(4000):
            topic = f"{T}/{rng.choice(TOPICS)}/set" if rng.random() < 0.75 else rng.choice(UNKNOWN)
            payload = junk(rng)
            if topic.startswith(f"{T}/") and topic.endswith("/set"):
                try:
                    parse_command(T, topic, payload, MOODS)
                    continue  # valid by the contract: not junk
                except ValueError:
                    pass
            if topic == "homeassistant/status" and payload.strip() == b"online":
                continue
            rec.c.publish(topic, payload, qos=rng.choice([0, 1]))
            sent += 1
            if i % 8 == 0:  # valid payloads, but retained: never applied
                rtopic = rng.choice(TOPICS)
                rpayload = {"auto_dj": "ON", "privacy": "OFF", "mood": "calm", "music": "OFF", "skip": "PRESS", "volume": "5"}[
                    rtopic
                ]
                rec.c.publish(f"{T}/{rtopic}/set", rpayload, qos=1, retain=True)
                retained += 1
            if i % 500 == 0:
                time.sleep(0.05)
        rec.publish(f"{T}/mood/set", "neutral", retain=True)
        time.sleep(3.0)  # let the box chew through the queue
        assert box.proc.poll() is None, box.log.read_text()[-3000:]
        assert mpd_now() == mpd_before
        assert box_now() == box_before
        assert (state_dir / "settings.json").read_text() == settings_before
        log = box.log.read_text()
        assert "Traceback" not in log and "command from MQTT" not in log
        assert log.count("ignored message") < 30, "a flood must not flood the log"
        print(f"\n  fuzz: {sent} malformed/oversized/binary messages and {retained + 1} retained valid ones: 0 actions")

        # Home Assistant "restarting" 2000 times: discovery at most every few seconds, no memory kept
        rss_before = rss_kb(box.proc.pid)
        rec.clear()
        for _ in range(2000):
            rec.c.publish("homeassistant/status", "online", qos=0)
        rec.publish("homeassistant/status", "online")
        time.sleep(6.0)
        configs = [t for t, _, _ in rec.messages if t.endswith("/config")]
        grown_mb = (rss_kb(box.proc.pid) - rss_before) / 1024
        print(f"  2000 x homeassistant/status online: {len(configs)} discovery publishes, resident memory {grown_mb:+.1f} MB")
        assert 1 <= len(configs) <= 2 * 13 and grown_mb < 5

        for t in TOPICS:  # the broker keeps retained commands: clear them before the valid ones
            rec.publish(f"{T}/{t}/set", "", retain=True)
        rec.publish(f"{T}/volume/set", "55")
        wait_for(lambda: mpd_now()["volume"] == "55", what="a valid volume after the flood")
        rec.publish(f"{T}/music/set", "OFF")
        wait_for(lambda: mpd_now()["state"] == "pause", what="a valid pause after the flood")
        assert mpd_now()["song"] == mpd_before["song"] and mpd_now()["queue"] == mpd_before["queue"]
        assert box.log.read_text().count("command from MQTT") == 2
    finally:
        rec.close()
        box.close()
