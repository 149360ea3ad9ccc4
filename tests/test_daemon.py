"""`moodbox run` as a process, with a real mpd and mosquitto: the appliance's fault tolerance."""

from __future__ import annotations

import json
import signal
import socket
import time

import cv2

from tests.mqtt_helpers import Recorder

from tests.box import T, Box, box_factory, faces_folder, library  # noqa: F401  (fixtures)
from tests.util import wait_for


def state(rec: Recorder) -> dict:
    last = rec.last(f"{T}/state")
    return json.loads(last) if last else {}


def test_sigterm_clean_stop_offline_and_music_left_playing(box_factory, faces_folder):
    box = box_factory(faces_folder)
    rec = Recorder(box.broker.port)
    box.start()
    wait_for(lambda: rec.last(f"{T}/availability") == b"online", timeout=10, what="online")
    c = box.mpd_client()
    wait_for(lambda: c.status()["state"] == "play", what="music")
    box.proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    assert box.proc.wait(5) == 0
    assert time.monotonic() - t0 < 2.0, "clean stop took too long"
    wait_for(lambda: rec.last(f"{T}/availability") == b"offline", what="offline")
    assert c.status()["state"] == "play"  # the music goes on


def test_mpd_restart_music_back_under_control(box_factory, faces_folder):
    box = box_factory(faces_folder)
    box.start()
    c = box.mpd_client()
    wait_for(lambda: c.status()["state"] == "play", timeout=10, what="music")
    box.mpd.kill()
    time.sleep(1.0)
    box.mpd.start()
    t0 = time.monotonic()
    c = box.mpd_client()
    wait_for(lambda: c.status()["state"] == "play" and len(c.playlistinfo()) > 1, timeout=5, what="music again")
    assert time.monotonic() - t0 < 5.0
    assert box.proc.poll() is None


def test_broker_restart_everything_back(box_factory, faces_folder):
    box = box_factory(faces_folder)
    box.start()
    rec = Recorder(box.broker.port)
    wait_for(lambda: rec.last(f"{T}/availability") == b"online", timeout=10, what="online")
    rec.close()
    box.broker.kill()
    time.sleep(1.0)
    box.broker.start()
    t0 = time.monotonic()
    rec = Recorder(box.broker.port)
    wait_for(lambda: rec.last(f"{T}/availability") == b"online", what="online again")
    wait_for(lambda: len(rec.topics("homeassistant/")) >= 10, what="discovery again")
    wait_for(lambda: state(rec), what="state again")
    assert time.monotonic() - t0 < 5.0
    assert box.proc.poll() is None


def test_source_that_ends_is_reported_and_retried(box_factory, astronaut_png, tmp_path):
    clip = tmp_path / "short.mp4"
    img = cv2.imread(str(astronaut_png))
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (img.shape[1], img.shape[0]))
    for _ in range(10):
        w.write(img)
    w.release()
    box = box_factory(clip, camera={"loop": False, "retry_s": 1.0, "retry_max_s": 1.0})
    rec = Recorder(box.broker.port)
    box.start()
    wait_for(lambda: "source ended" in str(state(rec).get("status")), timeout=15, what="the end reported on MQTT")
    assert "source" in box.log.read_text() and "ended" in box.log.read_text()
    n_ok = len([1 for p in rec.on(f"{T}/state") if json.loads(p)["status"] == "ok"])
    wait_for(lambda: len([1 for p in rec.on(f"{T}/state") if json.loads(p)["status"] == "ok"]) > n_ok, timeout=5, what="a retry")
    assert box.proc.poll() is None and rec.last(f"{T}/availability") == b"online"


def test_missing_source_keeps_mqtt_alive(box_factory, tmp_path):
    box = box_factory(tmp_path / "camera-not-plugged-in.mp4")
    rec = Recorder(box.broker.port)
    box.start()
    s = wait_for(lambda: state(rec).get("status", "").startswith("source unavailable") and state(rec), timeout=10, what="the failure on MQTT")
    assert "camera-not-plugged-in.mp4': no such file or folder" in s["status"] and "camera.source" in s["status"]
    assert rec.last(f"{T}/availability") == b"online" and box.proc.poll() is None


def test_privacy_closes_the_camera_and_hides_emotion(box_factory, faces_folder):
    box = box_factory(faces_folder)
    rec = Recorder(box.broker.port)
    box.start()
    wait_for(lambda: state(rec).get("fps", 0) > 0, timeout=10, what="frames")
    rec.publish(f"{T}/privacy/set", "ON")
    wait_for(lambda: state(rec).get("privacy") == "ON", what="privacy on")
    time.sleep(0.5)
    rec.clear()
    time.sleep(1.5)
    for p in rec.on(f"{T}/state"):
        s = json.loads(p)
        assert s["emotion"] is None and s["scores"] == {} and s["face"] is False and s["privacy"] == "ON"
    assert "privacy ON: camera closed" in box.log.read_text()
    rec.publish(f"{T}/privacy/set", "OFF")
    wait_for(lambda: state(rec).get("privacy") == "OFF" and state(rec).get("fps", 0) > 0, what="frames again")


def test_mood_override_and_skip_from_mqtt(box_factory, faces_folder):
    box = box_factory(faces_folder)
    rec = Recorder(box.broker.port)
    box.start()
    c = box.mpd_client()
    wait_for(lambda: c.status()["state"] == "play", timeout=10, what="music")
    # Music can start before the daemon has subscribed on MQTT; a command sent before that is lost (commands
    # are not retained), so wait until it is online: it subscribes before it says so.
    wait_for(lambda: rec.last(f"{T}/availability") == b"online", timeout=10, what="online")
    rec.publish(f"{T}/mood/set", "calm")
    wait_for(lambda: all(s["file"].startswith("ambient/") for s in c.playlistinfo()[1:]), what="calm music queued")
    wait_for(lambda: state(rec).get("mood_select") == "calm", what="the select to show it")
    before = c.currentsong()["id"]
    rec.publish(f"{T}/skip/set", "PRESS")
    wait_for(lambda: c.currentsong().get("id") != before, what="skip")
    wait_for(lambda: c.currentsong().get("file", "").startswith("ambient/"), what="calm playing")
    rec.publish(f"{T}/auto_dj/set", "OFF")
    wait_for(lambda: state(rec).get("auto_dj") == "OFF", what="auto-DJ off")


def test_systemd_ready_watchdog_status(box_factory, faces_folder, tmp_path):
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.5)
    box = box_factory(faces_folder, env={"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "2000000", "JOURNAL_STREAM": "8:1"})
    box.start()
    got: list[str] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (any("READY=1" in g for g in got) and sum("WATCHDOG=1" in g for g in got) >= 3 and any("STATUS=" in g for g in got)):
        try:
            got.append(sock.recv(4096).decode())
        except socket.timeout:
            pass
    sock.close()
    assert any("READY=1" in g for g in got), got
    assert sum("WATCHDOG=1" in g for g in got) >= 3, got
    assert any(g.startswith("STATUS=") and "fps" in g for g in got), got
    first_line = box.log.read_text().splitlines()[-1]
    assert not first_line[:4].isdigit()  # under systemd (JOURNAL_STREAM) no timestamps: journald adds them
