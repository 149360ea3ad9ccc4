"""VisionPipeline: a held face is classified less often than every frame, a moved or new face at once
(issue 26: the music follows a 3 s smoothed emotion, so five looks a second at a still head do)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from moodbox.config import Config
from moodbox.vision.emotions import EmotionScores
from moodbox.vision.faces import Face, FaceDetector, to_gray
from moodbox.vision.pipeline import RECLASSIFY_S, VisionPipeline
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


@pytest.fixture(scope="module")
def face_patch(astronaut_png) -> np.ndarray:
    gray = to_gray(cv2.imread(str(astronaut_png)))
    [face] = FaceDetector().detect(gray)
    x, y, w, h = face.box
    m = w // 2
    return cv2.resize(gray[y - m : y + h + m, x - m : x + w + m], (240, 240), interpolation=cv2.INTER_CUBIC)


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
