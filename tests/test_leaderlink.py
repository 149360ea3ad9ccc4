"""A follower's link to its leader (pure logic; the process test is in test_group.py)."""

from __future__ import annotations

import json

import pytest

from moodbox.config import Config
from moodbox.leaderlink import BEAT_S, LeaderLink

BEAT = json.dumps({"group": "house", "leader": "living"}).encode()


def link() -> LeaderLink:
    return LeaderLink("house", "living", fallback_s=10, now=0.0)


def test_a_follower_starts_waiting_for_its_leader_and_falls_back_after_the_bounded_wait():
    k = link()
    assert k.following and k.latest(1.0).why == "waiting for the leader"
    assert not k.update(9.9) and k.following
    assert k.update(10.0) and not k.following
    assert k.latest(10.0).as_json("house") == {
        "name": "house",
        "role": "follower",
        "leader": "living",
        "playing": "own",
        "why": "leader lost",
    }


def test_beats_keep_it_following_and_silence_for_fallback_s_ends_that():
    k = link()
    for t in range(0, 30, 2):
        k.heard("group", BEAT, float(t))
        assert not k.update(float(t) + 1) and k.following
    assert k.latest(29.0).why == "leader"
    assert not k.update(28 + 9.9)
    assert k.update(28 + 10.0) and not k.following


def test_it_rejoins_after_two_beats_in_a_row_not_after_one_stray():
    k = link()
    k.update(10.0)
    k.heard("group", BEAT, 11.0)
    assert not k.update(11.0)  # one beat: not yet
    k.heard("group", BEAT, 11.0 + 3 * BEAT_S)  # too far apart: a new run
    assert not k.update(11.0 + 3 * BEAT_S)
    k.heard("group", BEAT, 11.0 + 4 * BEAT_S)
    assert k.update(11.0 + 4 * BEAT_S) and k.following


def test_offline_starts_a_new_run_and_junk_or_another_group_is_ignored(caplog):
    k = link()
    k.update(10.0)
    k.heard("group", BEAT, 11.0)
    k.heard("availability", b"offline", 11.5)
    k.heard("group", BEAT, 12.0)
    assert not k.update(12.0)  # the run began again after offline
    for junk in (b"not json", b"[1]", json.dumps({"group": "flat", "leader": "living"}).encode()):
        k.heard("group", junk, 13.0)
    assert not k.update(13.0) and not k.following
    k.heard("group", BEAT, 13.5)
    assert k.update(13.5)
    k.heard("state", b'{"mood": "sad"}', 14.0)
    assert k.leader_state == {"mood": "sad"}
    assert sum("leads group 'flat'" in r.message for r in caplog.records) == 1


def test_group_config_for_followers_and_leaders():
    cfg = Config.model_validate({"group": {"name": "house", "role": "follower", "leader": "living", "fallback_s": 5}})
    assert cfg.group.follows() and cfg.group.part() == "follower" and cfg.group.fallback_s == 5
    with pytest.raises(ValueError, match="group.leader is a follower's key"):
        Config.model_validate({"group": {"name": "house", "role": "leader", "leader": "living"}})
    with pytest.raises(ValueError, match="fallback_s"):
        Config.model_validate({"group": {"name": "house", "role": "follower", "leader": "living", "fallback_s": 1}})
    assert Config.model_validate({}).group.part() is None


def test_a_follower_shows_its_leaders_music_only_with_the_right_types():
    from moodbox.grouping import Grouping, MemberSaid
    from moodbox.music.player import PlayerState

    cfg = Config.model_validate({"group": {"name": "house", "role": "follower", "leader": "living"}})
    g = Grouping(cfg, 0.0)
    assert g.listens_to == ["living"] and g.beat("kitchen") is None and g.following()
    hostile = {"mood": 7, "playlist": ["x"], "song": {"title": 3}, "music": "LOUD"}
    g.heard(MemberSaid("living", "state", json.dumps(hostile).encode(), 0.0))
    g.heard(MemberSaid("elsewhere", "group", BEAT, 0.0))  # not its leader
    own = PlayerState(connected=True, mood="happy", music="STOPPED")
    out = g.fields(own, 1.0)
    assert {k: out[k] for k in ("mood", "playlist", "song", "music")} == {
        "mood": None,
        "playlist": None,
        "song": None,
        "music": None,
    }
    assert out["group"]["playing"] == "group" and out["house"] is None
    leader = Grouping(Config.model_validate({"group": {"name": "house", "members": ["kitchen"]}}), 0.0)
    assert leader.listens_to == ["kitchen"] and json.loads(leader.beat("living") or "") == {"group": "house", "leader": "living"}
    assert leader.fields(own, 1.0)["group"] == {"name": "house", "role": "leader", "members": ["kitchen"]}
