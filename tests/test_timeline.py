"""Scripted clips of FER2013 faces with a known emotion timeline, through the real pipeline (DESIGN §8)."""

from __future__ import annotations

import pytest

from moodbox.config import Config
from moodbox.pipeline import VisionPipeline
from moodbox.sources import open_source
from moodbox.demo import Segment, write_clip

TIMELINE = [Segment("happy", 12), Segment("surprise", 12), Segment("happy", 12), Segment("neutral", 12)]


@pytest.fixture(scope="module")
def clip(fer_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("clip")
    truth = write_clip(fer_root / "val", TIMELINE, out, fps=5.0)
    return out, truth


def test_smoothed_emotion_follows_the_timeline(clip):
    folder, truth = clip
    cfg = Config.model_validate({"camera": {"folder_fps": 5.0, "realtime": False}})
    pipe = VisionPipeline(cfg)
    src = open_source(str(folder), realtime=False, folder_fps=5.0)
    results = [pipe.process(f) for f in src.frames()]
    assert len(results) == len(truth)
    detected = sum(bool(r.faces) for r in results) / len(results)
    assert detected > 0.6, f"Haar found a face in only {detected:.0%} of frames"

    stable = [r.smoothed.emotion for r in results]
    s = cfg.smoothing
    boundaries = [0.0]
    for seg in TIMELINE[:-1]:
        boundaries.append(boundaries[-1] + seg.seconds)
    changes = sum(1 for a, b in zip(stable, stable[1:]) if a != b)
    assert changes <= len(TIMELINE), f"{changes} changes for {len(TIMELINE) - 1} true changes: {stable}"

    for start, seg in zip(boundaries, TIMELINE):
        end = start + seg.seconds
        seg_results = [(r.t, e) for r, e in zip(results, stable) if start <= r.t < end]
        assert seg_results[-1][1] == seg.emotion, f"{seg.emotion} segment ends on {seg_results[-1][1]}"
        reached = next(t for t, e in seg_results if e == seg.emotion)
        assert reached - start <= s.window_s + s.dwell_s + 0.5, f"{seg.emotion}: reached {reached - start:.1f}s after its start"
