"""One frame through the vision chain: faces -> emotions -> smoother.

Shared by ``replay``, ``bench`` and the daemon so that all three measure and run exactly the same code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from moodbox.config import Config
from moodbox.vision.emotions import EmotionClassifier, EmotionScores
from moodbox.vision.faces import FaceDetector, to_gray
from moodbox.vision.proposals import FaceProposer
from moodbox.vision.smoothing import FaceScores, SmoothedEmotion, Smoother
from moodbox.vision.sources import Frame
from moodbox.vision.tracking import FaceTracker


@dataclass(frozen=True)
class FrameResult:
    t: float
    faces: list[EmotionScores]  # every face classified (up to detection.max_faces), largest first
    smoothed: SmoothedEmotion  # .faces: how many faces are in view

    timings_ms: dict[str, float] = field(default_factory=dict)
    detection: str = "full"  # how the faces were found: full | roi | still | idle

    def as_dict(self, mood: str | None = None) -> dict[str, Any]:
        return {
            "t": round(self.t, 3),
            "faces": [f.as_dict() for f in self.faces],
            "emotion": self.smoothed.emotion,
            "smoothed": {k: round(v, 4) for k, v in self.smoothed.scores.items()},
            "mood": mood,
        }


# Faces whose boxes have not changed (the tracker holds a still head's box) are classified again at most
# this often; in between their last scores stand. The music follows a 3 s smoothed emotion: five looks a
# second keep what the listener hears (docs/performance.md) at half the inferences of a talking listener.
RECLASSIFY_S = 0.2
# An empty, still room (nobody tracked or lost, nothing moved) is looked at only this often: whoever comes in
# is seen at most this much later, which the music (a 3 s smoothed emotion, a dwell) never notices, and
# the box spends least where nothing happens.
EMPTY_LOOK_S = 0.2


class VisionPipeline:
    def __init__(self, cfg: Config, classifier: EmotionClassifier | None = None) -> None:
        self.detector = FaceDetector(cfg.detection)
        d = cfg.detection
        proposer = FaceProposer(threads=cfg.model.threads) if d.tracking and d.proposals else None
        self.tracker = FaceTracker(self.detector, d, proposer)
        self._last_scores: list[EmotionScores] = []
        self._last_boxes: list[tuple[int, int, int, int]] = []
        self._classified_t = -1e9
        self.classifier = classifier or EmotionClassifier(cfg.model.path, threads=cfg.model.threads)
        self.smoother = Smoother(self.classifier.labels, cfg.smoothing)
        self.max_faces = cfg.detection.max_faces
        self._skips_empty = cfg.detection.tracking  # (the full-scan reference looks at every frame)
        self._empty_since: float | None = None  # when an empty, still room was last looked at

    def process(self, frame: Frame) -> FrameResult:
        t0 = time.perf_counter()
        if self._empty_since is not None and frame.t - self._empty_since < EMPTY_LOOK_S:
            smoothed = self.smoother.update(frame.t, [])
            return FrameResult(frame.t, [], smoothed, {"detect": 0.0, "classify": 0.0, "smooth": 0.0}, "idle")
        gray = to_gray(frame.image)
        found = self.tracker.detect(gray, frame.t)
        empty = self._skips_empty and not found.faces and found.kind in ("still", "idle") and self.tracker.empty
        self._empty_since = frame.t if empty else None
        faces = found.faces[: self.max_faces]
        t1 = time.perf_counter()
        boxes = [f.box for f in faces]
        if found.kind == "still" or (
            boxes == self._last_boxes and frame.t - self._classified_t < RECLASSIFY_S and found.kind != "full"
        ):
            scored = self._last_scores  # the same picture, or the same held boxes a moment later: the same answer
        else:
            scored = self.classifier.classify(gray, faces)
            self._last_scores = scored
            self._last_boxes = boxes
            self._classified_t = frame.t
        t2 = time.perf_counter()
        smoothed = self.smoother.update(frame.t, [FaceScores(f.scores, f.box[2] * f.box[3]) for f in scored])
        if len(found.faces) != smoothed.faces:  # more in view than classified (detection.max_faces)
            smoothed = replace(smoothed, faces=len(found.faces))
        t3 = time.perf_counter()
        return FrameResult(
            t=frame.t,
            faces=scored,
            smoothed=smoothed,
            timings_ms={"detect": (t1 - t0) * 1e3, "classify": (t2 - t1) * 1e3, "smooth": (t3 - t2) * 1e3},
            detection=found.kind,
        )

    def reset(self) -> None:
        """Forget faces and emotions (after a privacy pause or a source change)."""
        self.tracker.reset()
        self.smoother.reset()
        self._last_scores = []
        self._last_boxes = []
        self._classified_t = -1e9
        self._empty_since = None
