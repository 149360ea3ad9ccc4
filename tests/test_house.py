"""The house mood of a group of boxes (pure logic: issue 27's rules), and the group config."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from moodbox.config import Config
from moodbox.house import RoomReport, combine
from moodbox.rooms import Rooms

HAPPY = {"happy": 0.8, "sad": 0.1, "neutral": 0.1}
SAD = {"happy": 0.1, "sad": 0.7, "neutral": 0.2}


def room(name: str, scores=HAPPY, faces=1, **kw) -> RoomReport:
    emotion = max(scores, key=lambda e: scores[e]) if scores else None
    return RoomReport(name, emotion=emotion, scores=scores, faces=faces, **kw)


def test_rooms_are_weighted_by_their_faces():
    house = combine([room("living", HAPPY, faces=1), room("kitchen", SAD, faces=3)], stale_s=30)
    assert house.emotion == "sad"
    assert house.scores["sad"] == pytest.approx((0.1 + 3 * 0.7) / 4, abs=1e-3)
    assert house.rooms == {
        "living": {"counts": True, "faces": 1, "emotion": "happy"},
        "kitchen": {"counts": True, "faces": 3, "emotion": "sad"},
    }


@pytest.mark.parametrize(
    "kitchen, why",
    [
        (room("kitchen", SAD, faces=3, privacy=True), "privacy"),
        (room("kitchen", SAD, faces=0), "empty"),
        (room("kitchen", {}, faces=None), "empty"),
        (room("kitchen", SAD, faces=3, age_s=31.0), "not reporting"),
        (room("kitchen", SAD, faces=3, online=False), "offline"),
        (RoomReport("kitchen", age_s=None), "not heard yet"),
    ],
)
def test_a_room_that_does_not_count_counts_for_nothing_and_says_why(kitchen, why):
    house = combine([room("living", HAPPY, faces=1), kitchen], stale_s=30)
    assert house.emotion == "happy" and house.rooms["kitchen"] == {"counts": False, "why": why}


def test_no_room_counting_means_no_house_emotion():
    house = combine([room("living", HAPPY, faces=0), room("kitchen", SAD, privacy=True)], stale_s=30)
    assert house.emotion is None and house.scores == {}


def test_the_house_emotion_needs_a_clear_lead_to_change():
    close = {"happy": 0.46, "sad": 0.5, "neutral": 0.04}
    assert combine([room("a", close)], 30, current="happy", margin=0.1).emotion == "happy"
    assert combine([room("a", close)], 30, current=None, margin=0.1).emotion == "sad"
    assert combine([room("a", SAD)], 30, current="happy", margin=0.1).emotion == "sad"


@pytest.mark.parametrize(
    "state",
    [
        {"emotion": 5, "scores": "x", "faces": True, "privacy": "OFF"},
        {"emotion": "happy", "scores": {"happy": "lots"}, "faces": -3},
        {},
    ],
)
def test_a_hostile_state_never_counts(state):
    r = RoomReport.from_state("kitchen", state, 0.0, True)
    assert combine([r], 30).rooms["kitchen"] == {"counts": False, "why": "empty"}


def test_rooms_track_members_messages_and_ignore_junk(caplog):
    rooms = Rooms("living", ["kitchen", "living", "bedroom"], stale_s=10, margin=0.1)
    assert set(rooms.members) == {"kitchen", "bedroom"}  # the leader is not its own member
    state = {"emotion": "sad", "scores": SAD, "faces": 2, "privacy": "OFF"}
    rooms.heard("kitchen", "state", json.dumps(state).encode(), now=100.0)
    rooms.heard("bedroom", "state", b"{not json", now=100.0)
    rooms.heard("stranger", "state", json.dumps(state).encode(), now=100.0)
    own = {"emotion": "happy", "scores": HAPPY, "faces": 1, "privacy": "OFF"}
    house = rooms.house(own, now=101.0)
    assert house.emotion == "sad"
    assert house.rooms["bedroom"] == {"counts": False, "why": "not heard yet"} and "stranger" not in house.rooms
    assert rooms.house(own, now=111.0).rooms["kitchen"] == {"counts": False, "why": "not reporting"}
    rooms.heard("kitchen", "state", json.dumps(state).encode(), now=111.0)
    rooms.heard("kitchen", "availability", b"offline", now=111.0)
    assert rooms.house(own, now=111.5).rooms["kitchen"]["why"] == "offline"
    assert sum("not a box's state" in r.getMessage() for r in caplog.records) == 1


def test_group_config_rules():
    assert not Config().group.leads()
    cfg = Config.model_validate({"group": {"name": "house", "members": ["kitchen", "bedroom"]}})
    assert cfg.group.leads()
    with pytest.raises(ValidationError, match="a follower needs group.leader"):
        Config.model_validate({"group": {"name": "house", "role": "follower"}})
    with pytest.raises(ValidationError, match="not a device_id"):
        Config.model_validate({"group": {"name": "house", "members": ["Kitchen Box"]}})
    with pytest.raises(ValidationError, match="listed twice"):
        Config.model_validate({"group": {"name": "house", "members": ["a", "a"]}})


def test_a_leader_waits_longer_than_a_quiet_box_stays_silent():
    with pytest.raises(ValidationError, match="group.stale_s .* must be longer than mqtt.state_interval_s"):
        Config.model_validate({"group": {"name": "house", "stale_s": 20}, "mqtt": {"state_interval_s": 30}})
    assert Config.model_validate({"group": {"name": "house"}}).group.stale_s > Config().mqtt.state_interval_s
