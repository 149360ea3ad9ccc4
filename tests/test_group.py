"""A group's leader as a process (`moodbox run` with real mpd and mosquitto): it combines its own room
with the rooms its members report over MQTT into the house mood, and its music follows the house.

The member here is its messages: the test publishes, on the same broker, the state a kitchen box
publishes (retained, as a box does) and its availability. The leader sees no difference.
"""

from __future__ import annotations

import json
import time

import yaml

from tests.box import T, box_factory, faces_folder, library  # noqa: F401  (fixtures)
from tests.mqtt_helpers import Beats, Recorder
from tests.util import wait_for

SAD = {"angry": 0.02, "disgust": 0.01, "fear": 0.05, "happy": 0.05, "sad": 0.72, "surprise": 0.02, "neutral": 0.13}
KITCHEN_SAD = {"emotion": "sad", "scores": SAD, "faces": 3, "face": True, "privacy": "OFF", "status": "ok"}
KITCHEN_PRIVATE = {"emotion": None, "scores": {}, "faces": None, "face": None, "privacy": "ON", "status": "privacy"}


def house(rec: Recorder) -> dict:
    last = rec.last(f"{T}/state")
    return (json.loads(last).get("house") or {}) if last else {}


def test_the_leaders_music_follows_the_house_and_each_rule_removes_a_room(box_factory, faces_folder):
    box = box_factory(faces_folder)  # its own room: one happy face
    cfg = yaml.safe_load(box.cfg_path.read_text())
    cfg["group"] = {"name": "house", "members": ["kitchen", "bedroom"], "stale_s": 4}
    cfg["mqtt"]["state_interval_s"] = 2  # a leader waits longer than a quiet box stays silent
    box.cfg_path.write_text(yaml.safe_dump(cfg))
    rec = Recorder(box.broker.port)
    rec.publish("moodbox/kitchen/availability", "online", retain=True)
    rec.publish("moodbox/kitchen/state", json.dumps(KITCHEN_SAD), retain=True)
    box.start()
    c = box.mpd_client()

    # three sad faces in the kitchen outweigh one happy face here
    wait_for(lambda: house(rec).get("emotion") == "sad", timeout=20, what="the house to be sad")
    rooms = house(rec)["rooms"]
    assert rooms["kitchen"] == {"counts": True, "faces": 3, "emotion": "sad"}
    assert rooms["bedroom"] == {"counts": False, "why": "not heard yet"}
    wait_for(lambda: rooms_count(rec, "boxtest"), timeout=20, what="the leader's own room to count")
    wait_for(lambda: c.currentsong().get("file", "").startswith("blues/"), timeout=20, what="sad music (Blues)")

    # privacy in the kitchen: it counts for nothing; the house is this room's happy
    rec.publish("moodbox/kitchen/state", json.dumps(KITCHEN_PRIVATE), retain=True)
    wait_for(lambda: house(rec).get("emotion") == "happy", timeout=10, what="the house to be happy")
    assert house(rec)["rooms"]["kitchen"] == {"counts": False, "why": "privacy"}
    wait_for(lambda: c.currentsong().get("file", "").startswith("pop/"), timeout=20, what="happy music (Pop)")

    # a kitchen box that stops reporting counts for nothing after group.stale_s
    rec.publish("moodbox/kitchen/state", json.dumps(KITCHEN_SAD), retain=True)
    wait_for(lambda: house(rec).get("emotion") == "sad", timeout=10, what="sad again")
    wait_for(lambda: house(rec)["rooms"]["kitchen"].get("why") == "not reporting", timeout=15, what="stale")
    assert house(rec)["emotion"] == "happy"

    # its last will: offline
    rec.publish("moodbox/kitchen/state", json.dumps(KITCHEN_SAD), retain=True)
    rec.publish("moodbox/kitchen/availability", "offline", retain=True)
    wait_for(lambda: house(rec)["rooms"]["kitchen"].get("why") == "offline", timeout=10, what="offline")

    # Home Assistant: the House emotion is on the leader's device
    assert rec.last("homeassistant/sensor/moodbox_boxtest/house_emotion/config")
    assert "Traceback" not in box.log.read_text()


def rooms_count(rec: Recorder, name: str) -> bool:
    return bool(house(rec).get("rooms", {}).get(name, {}).get("counts"))


def test_a_box_without_a_group_publishes_no_house(box_factory, faces_folder):
    box = box_factory(faces_folder)
    rec = Recorder(box.broker.port)
    box.start()
    wait_for(lambda: rec.last(f"{T}/state"), timeout=15, what="state")
    wait_for(lambda: rec.last("homeassistant/sensor/moodbox_boxtest/emotion/config"), timeout=15, what="discovery")
    assert json.loads(rec.last(f"{T}/state") or b"{}")["house"] is None
    assert rec.last("homeassistant/sensor/moodbox_boxtest/house_emotion/config") is None


LEADER_STATE = {
    "mood": "sad",
    "playlist": "playlist mood_sad",
    "music": "PLAYING",
    "song": {"artist": "A", "title": "T", "file": "blues/blues1.ogg"},
}


def group_of(rec: Recorder) -> dict:
    last = rec.last(f"{T}/state")
    return (json.loads(last).get("group") or {}) if last else {}


def test_a_follower_keeps_its_mpd_stopped_while_its_leader_beats_and_plays_its_own_room_when_it_is_lost(
    box_factory, faces_folder
):
    box = box_factory(faces_folder)  # its own room: one happy face
    cfg = yaml.safe_load(box.cfg_path.read_text())
    cfg["group"] = {"name": "house", "role": "follower", "leader": "living", "fallback_s": 3}
    box.cfg_path.write_text(yaml.safe_dump(cfg))
    rec = Recorder(box.broker.port)
    rec.publish("moodbox/living/state", json.dumps(LEADER_STATE), retain=True)
    beats = Beats(rec)
    beats.on.set()
    try:
        c = box.mpd_client()
        c.add("pop/pop1.ogg")
        c.play()  # what MPD resumed at boot: a follower stops it, its speaker is the group's
        box.start()
        wait_for(lambda: group_of(rec).get("why") == "leader", timeout=20, what="the follower to hear its leader")
        wait_for(lambda: c.status()["state"] == "stop", timeout=10, what="the follower's own MPD to stop")
        state = json.loads(rec.last(f"{T}/state") or b"{}")
        assert state["group"] == {"name": "house", "role": "follower", "leader": "living", "playing": "group", "why": "leader"}
        assert (state["mood"], state["song"], state["music"]) == ("sad", LEADER_STATE["song"], "PLAYING")  # the leader's
        assert state["house"] is None
        wait_for(lambda: json.loads(rec.last(f"{T}/state") or b"{}")["emotion"] == "happy", timeout=20, what="its own room")
        assert rec.last("homeassistant/sensor/moodbox_boxtest/music_source/config")
        assert not rec.last("homeassistant/sensor/moodbox_boxtest/house_emotion/config")
        rec.publish(f"{T}/skip/set", "PRESS")  # the group's music is the leader's to skip
        wait_for(
            lambda: "skip ignored: this box plays its group's music" in box.log.read_text(), timeout=5, what="the skip refused"
        )
        assert c.status()["state"] == "stop"

        # the leader goes quiet: after group.fallback_s the box plays its own room's music
        beats.on.clear()
        wait_for(lambda: group_of(rec).get("playing") == "own", timeout=10, what="the follower to fall back")
        wait_for(lambda: c.status()["state"] == "play", timeout=10, what="its own MPD to play")
        wait_for(lambda: c.currentsong().get("file", "").startswith("pop/"), timeout=10, what="happy music for its own room")
        assert group_of(rec)["why"] == "leader lost"
        wait_for(lambda: json.loads(rec.last(f"{T}/state") or b"{}")["mood"] == "happy", timeout=5, what="its own mood shown")

        # a beat from a leader of another group is not its leader's
        beats.group = "flat"
        beats.on.set()
        time.sleep(3)
        assert group_of(rec)["playing"] == "own" and c.status()["state"] == "play"

        # the leader is back: the group's music again, its own MPD stopped
        beats.group = "house"
        wait_for(lambda: group_of(rec).get("playing") == "group", timeout=10, what="the follower to rejoin")
        wait_for(lambda: c.status()["state"] == "stop", timeout=10, what="its own MPD to stop again")
        log = box.log.read_text()
        assert "Traceback" not in log
        assert log.count("leads group 'flat'") == 1  # said once, not every beat
    finally:
        beats.close()
        rec.close()
