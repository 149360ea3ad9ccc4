"""Scripted clips of FER2013 faces with a known emotion timeline, through the real pipeline."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from devtools.clips import Segment, write_clip
from moodbox.config import Config
from moodbox.vision.emotions import EmotionClassifier
from moodbox.vision.pipeline import VisionPipeline
from moodbox.vision.sources import Frame, open_source

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


def _clear_face(fer_root, emotion: str, classifier, detector) -> np.ndarray:
    """A validation face of ``emotion`` that Haar finds and the model reads as that emotion, at 192 px."""
    for path in sorted((fer_root / "val" / emotion).glob("*.jpg")):
        face = cv2.resize(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), (192, 192), interpolation=cv2.INTER_CUBIC)
        canvas = np.full((300, 300), 110, np.uint8)
        canvas[54:246, 54:246] = face
        found = detector.detect(canvas)
        if len(found) == 1 and classifier.classify_face(canvas, found[0].box).scores[emotion] >= 0.6:
            return face
    raise AssertionError(f"no clear {emotion} face in {fer_root / 'val' / emotion}")


def two_face_clip(fer_root, classifier, seconds: float = 24.0, fps: float = 10.0) -> list[Frame]:
    """A happy and a sad listener side by side, each drifting a few pixels; every 6 s the two swap which
    one is a little larger (172 and 212 px), as people leaning back and forth do."""
    from moodbox.vision.faces import FaceDetector

    det = FaceDetector()
    happy, sad = (_clear_face(fer_root, e, classifier, det) for e in ("happy", "sad"))
    rng = np.random.default_rng(4)
    frames = []
    for i in range(int(seconds * fps)):
        t = i / fps
        big_happy = int(t // 6) % 2 == 0
        img = np.full((480, 640), 110, np.uint8)
        for face, x0, big in ((happy, 40, big_happy), (sad, 360, not big_happy)):
            side = 212 if big else 172
            f = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
            x, y = x0 + int(rng.integers(-3, 4)), 140 + int(rng.integers(-3, 4))
            img[y : y + side, x : x + side] = f
        frames.append(Frame(image=img, t=t, index=i))
    return frames


def test_a_happy_and_a_sad_face_of_similar_size_do_not_make_the_box_flap(fer_root):
    """The room's mood: both faces count, so the stable emotion settles once and stays, whereas following
    the largest face alone swings with whoever leans forward."""
    classifier = EmotionClassifier()
    clip = two_face_clip(fer_root, classifier)
    runs = {}
    for mode in ("room", "largest"):
        pipe = VisionPipeline(Config.model_validate({"smoothing": {"faces": mode}}), classifier)
        runs[mode] = [pipe.process(f) for f in clip]
    room = [r.smoothed.emotion for r in runs["room"]]
    assert sum(r.smoothed.faces == 2 for r in runs["room"]) >= 0.9 * len(clip)
    assert all(len(r.faces) == r.smoothed.faces for r in runs["room"])
    assert room[-1] is not None
    assert sum(a != b for a, b in zip(room, room[1:])) == 1, room  # None -> one emotion, then steady
    largest = [r.smoothed.emotion for r in runs["largest"]]
    assert {"happy", "sad"} <= set(largest)  # the scenario bites: one face at a time swings
