"""VisionPipeline: a held face is classified less often than every frame, a moved or new face at once
(issue 26: the music follows a 3 s smoothed emotion, so five looks a second at a still head do)."""

from __future__ import annotations

import numpy as np

from moodbox.config import Config
from moodbox.vision.emotions import EmotionScores
from moodbox.vision.faces import Face
from moodbox.vision.pipeline import EMPTY_LOOK_S, RECLASSIFY_S, VisionPipeline
from moodbox.vision.sources import Frame

LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


class CountingClassifier:
    """Stands in for the LiteRT model: counts the faces it is asked to classify."""

    labels = LABELS

    def __init__(self) -> None:
        self.looked_at: list[list[tuple[int, int, int, int]]] = []

    def classify(self, image: np.ndarray, faces: list[Face]) -> list[EmotionScores]:
        self.looked_at.append([f.box for f in faces])
        return [EmotionScores(f.box, {k: (0.7 if k == "happy" else 0.05) for k in LABELS}) for f in faces]


def _frame(face_patch: np.ndarray, at: tuple[int, int], i: int) -> np.ndarray:
    img = np.full((480, 640), 110, np.uint8)
    x, y = at
    img[y : y + 240, x : x + 240] = face_patch
    # something moving far from the face (a curtain, a screen), so that no frame is "still"
    img[400:440, 560 - 8 * (i % 4) : 600 - 8 * (i % 4)] = 40 + 50 * (i % 3)
    return img


def test_a_held_face_is_classified_five_times_a_second_and_a_moved_face_at_once(face_patch):
    clf = CountingClassifier()
    pipe = VisionPipeline(Config(), clf)
    step = 0.04  # 25 frames a second
    kinds = []
    for i in range(25):  # one second of a still head
        kinds.append(pipe.process(Frame(_frame(face_patch, (200, 120), i), i * step, i)).detection)
    assert "roi" in kinds  # followed between full scans, not a still picture
    held = len(clf.looked_at)
    assert 4 <= held <= 1 / RECLASSIFY_S + 2, clf.looked_at  # about five looks in the second, not 25

    pipe.process(Frame(_frame(face_patch, (200, 120), 25), 25 * step, 25))
    before = len(clf.looked_at)
    moved = pipe.process(Frame(_frame(face_patch, (230, 140), 26), 26 * step, 26))  # the head moved
    assert len(clf.looked_at) == before + 1, "a moved face is classified again at once"
    assert moved.faces and moved.faces[0].box == clf.looked_at[-1][0]


def test_an_empty_still_room_is_looked_at_five_times_a_second_and_a_newcomer_is_seen(face_patch, monkeypatch):
    clf = CountingClassifier()
    pipe = VisionPipeline(Config(), clf)
    looked: list[float] = []
    detect = pipe.tracker.detect
    monkeypatch.setattr(pipe.tracker, "detect", lambda gray, t: looked.append(t) or detect(gray, t))
    rng = np.random.default_rng(0)
    for i in range(25):  # one second of an empty room with sensor noise, at 25 frames a second
        img = np.clip(110 + rng.normal(0.0, 2.0, (480, 640)), 0, 255).astype(np.uint8)
        assert pipe.process(Frame(img, i * 0.04, i)).faces == []
    assert 5 <= len(looked) <= 1 / EMPTY_LOOK_S + 2, looked  # about five looks, not 25
    seen = [pipe.process(Frame(_frame(face_patch, (200, 120), i), i * 0.04, i)).faces for i in range(25, 32)]
    assert any(seen[: int(EMPTY_LOOK_S / 0.04) + 1]), "someone coming in is seen within EMPTY_LOOK_S"


def test_the_full_scan_reference_looks_at_every_frame_of_an_empty_room():
    pipe = VisionPipeline(Config.model_validate({"detection": {"tracking": False}}), CountingClassifier())
    looked: list[float] = []
    detect = pipe.tracker.detect
    pipe.tracker.detect = lambda gray, t: looked.append(t) or detect(gray, t)  # type: ignore[method-assign]
    for i in range(10):
        pipe.process(Frame(np.full((120, 160), 110, np.uint8), i * 0.04, i))
    assert len(looked) == 10
