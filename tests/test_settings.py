"""Owner settings (pure file handling) and the state shaping for Home Assistant's recorder."""

from __future__ import annotations

import json
import threading

import pytest

from moodbox.settings import OwnerSettings, SettingsStore
from moodbox.vision.roomstate import StateShaper
from moodbox.vision.smoothing import SmoothedEmotion

MOODS = ["happy", "sad", "calm"]


def test_settings_saved_atomically_and_restored(tmp_path):
    store = SettingsStore(tmp_path, OwnerSettings(), MOODS)
    assert store.get() == OwnerSettings()
    store.update(privacy=True, mood="calm", volume=30, music=False, auto_dj=False)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left behind
    again = SettingsStore(tmp_path, OwnerSettings(), MOODS).get()
    assert again == OwnerSettings(privacy=True, auto_dj=False, mood="calm", music=False, volume=30)


@pytest.mark.parametrize("content", [b"", b"{", b"[1, 2]", b'{"privacy": "yes"}', b'{"volume": 500}', b"\xff\xfe", b"[" * 100000])
def test_unreadable_settings_mean_defaults_and_one_error_line(tmp_path, caplog, content):
    (tmp_path / "settings.json").write_bytes(content)
    defaults = OwnerSettings(auto_dj=False)
    assert SettingsStore(tmp_path, defaults, MOODS).get() == defaults
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "settings.json" in errors[0].getMessage() and "defaults" in errors[0].getMessage()
    assert (tmp_path / "settings.json.corrupt").is_file()


def test_a_mood_this_config_no_longer_has_goes_back_to_auto(tmp_path):
    (tmp_path / "settings.json").write_text(json.dumps({"mood": "polka", "privacy": True}))
    got = SettingsStore(tmp_path, OwnerSettings(), MOODS).get()
    assert got.mood is None and got.privacy is True


def test_concurrent_updates_all_land(tmp_path):
    store = SettingsStore(tmp_path, OwnerSettings(), MOODS)
    threads = [threading.Thread(target=store.update, kwargs={"volume": v}) for v in range(40)]
    threads += [threading.Thread(target=store.update, kwargs={"privacy": True})]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    saved = json.loads((tmp_path / "settings.json").read_text())
    assert saved["privacy"] is True and saved["volume"] == store.get().volume


def _sm(t, emotion, conf, face=True, scores=None):
    return SmoothedEmotion(
        t=t, emotion=emotion, confidence=conf, scores=scores or ({emotion: conf} if emotion else {}), face=face
    )


def test_shaper_confidence_moves_only_a_full_step_and_scores_follow_the_held_emotion():
    sh = StateShaper(confidence_step=0.1, presence_hold_s=10)
    sh.observe(_sm(0, "happy", 0.52, scores={"happy": 0.52, "sad": 0.3}), 1)
    v = sh.vision()
    assert v["emotion"] == "happy" and v["confidence"] == 0.5 and v["scores"] == {"happy": 0.52, "sad": 0.3}
    changes = 0
    last = v
    for i, c in enumerate([0.55, 0.47, 0.58, 0.44, 0.51, 0.56]):  # a talking face: noise under one step
        sh.observe(_sm(1 + i, "happy", c, scores={"happy": c, "sad": 1 - c}), 1)
        changes += sh.vision() != last
        last = sh.vision()
    assert changes == 0
    sh.observe(_sm(9, "happy", 0.71), 1)
    assert sh.vision()["confidence"] == 0.5  # a full step, but too soon after the last change
    sh.observe(_sm(10, "happy", 0.71), 1)
    assert sh.vision()["confidence"] == 0.7
    sh.observe(_sm(11, "sad", 0.4, scores={"happy": 0.3, "sad": 0.4}), 1)
    assert sh.vision()["emotion"] == "sad" and sh.vision()["scores"] == {"happy": 0.3, "sad": 0.4}


def test_shaper_presence_holds_and_unknowns_are_none():
    sh = StateShaper(presence_hold_s=5)
    assert sh.vision() == {"emotion": None, "confidence": None, "scores": {}, "face": None, "faces": None}
    sh.observe(_sm(0, None, 0.0, face=True), 1)
    assert sh.vision()["face"] is True and sh.vision()["confidence"] is None
    sh.observe(_sm(4, None, 0.0, face=False), 0)
    assert sh.vision()["face"] is True  # a missed detection is not someone leaving
    sh.observe(_sm(5.1, None, 0.0, face=False), 0)
    assert sh.vision()["face"] is False
    sh.clear()
    assert sh.vision()["face"] is None


def test_shaper_diagnostics_at_most_once_per_interval():
    now = [0.0]
    sh = StateShaper(diagnostics_interval_s=60, clock=lambda: now[0])
    assert sh.diagnostics(None, None) == {"fps": None, "inference_ms": None}
    assert sh.diagnostics(9.87, 1.23) == {"fps": 9.9, "inference_ms": 1.2}  # first figures show at once
    now[0] = 30
    assert sh.diagnostics(5.0, 3.0) == {"fps": 9.9, "inference_ms": 1.2}
    now[0] = 61
    assert sh.diagnostics(5.0, 3.0) == {"fps": 5.0, "inference_ms": 3.0}
    now[0] = 62
    assert sh.diagnostics(None, None) == {"fps": None, "inference_ms": None}  # the camera closed: at once
