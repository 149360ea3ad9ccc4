"""The moods of analysed tracks (pure logic: the sticker contract and the fit rule)."""

from __future__ import annotations

import pytest

from moodbox.config import MusicConfig
from moodbox.music.analysis import best_mood, fitting, library_means, mood_scores, parse_sticker


def test_mood_scores_are_weighted_means_of_the_moods_tags():
    tags = {"happy": 0.2, "party": 0.4, "catchy": 0.6, "dance": 0.0, "sad": 0.9}
    got = mood_scores(tags, {"happy": {"happy": 1, "party": 1, "catchy": 2}, "sad": {"sad": 1, "nope": 5}})
    assert got == {"happy": pytest.approx((0.2 + 0.4 + 1.2) / 4), "sad": 0.9}  # a tag the model lacks counts for nothing


@pytest.mark.parametrize("raw", ["", "not json", "[1, 2]", '{"happy": "high"}', '{"happy": true}'])
def test_a_sticker_that_is_not_an_object_of_numbers_is_ignored(raw):
    assert parse_sticker(raw) is None


def test_fit_is_relative_to_the_librarys_own_average():
    # 'happy' tags are rare, 'calm' ones common: raw scores would call every track calm
    lib = {
        "a": {"happy": 0.20, "calm": 0.30},
        "b": {"happy": 0.05, "calm": 0.60},
        "c": {"happy": 0.06, "calm": 0.55},
    }
    means = library_means(lib)
    assert best_mood(lib["a"], means) == "happy"
    assert fitting(lib, "happy", 0.8) == ["a"]
    assert fitting(lib, "calm", 0.8) == ["b", "c"]


def test_a_single_analysed_track_fits_every_mood_it_has_a_score_for():
    assert fitting({"a": {"happy": 0.1, "sad": 0.3}}, "happy", 0.8) == ["a"]


def test_mood_weights_are_merged_over_the_defaults_and_checked():
    cfg = MusicConfig.model_validate({"analysis": {"moods": {"happy": {"happy": 2.0}, "angry": None}}})
    assert cfg.analysis.moods["happy"] == {"happy": 2.0}
    assert "angry" not in cfg.analysis.moods and "sad" in cfg.analysis.moods
    with pytest.raises(ValueError, match="no tag with a positive weight"):
        MusicConfig.model_validate({"analysis": {"moods": {"happy": {"happy": 0}}}})
    with pytest.raises(ValueError, match="negative"):
        MusicConfig.model_validate({"analysis": {"moods": {"happy": {"happy": -1}}}})
