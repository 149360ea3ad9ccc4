"""Per-frame emotion scores -> one stable emotion.

A single frame's classification flickers (FER-type models are right about two times in three), so the
music follows an average over a sliding time window instead, with three brakes against flapping: a
confidence floor per frame, hysteresis (a challenger must lead the current emotion by a margin), and a
minimum dwell (it must keep that lead for a while). All times are frame timestamps, never the wall clock,
so a file replayed at any speed gives the same result as the live camera.

With several people in view, ``faces: room`` (the default) lets every face count: each frame's faces are
averaged, weighted by face area and by how sure the model is of each, before entering the window, so
one happy and one sad listener make a mixed but steady average instead of the box following whichever
face Haar happens to find larger in each frame. ``faces: largest`` uses the largest face alone.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from moodbox.config import SmoothingConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaceScores:
    """One face's emotion scores and its box's area (pixels), as the smoother weighs it."""

    scores: Mapping[str, float]
    area: float = 1.0


@dataclass(frozen=True)
class SmoothedEmotion:
    """The smoother's view after a frame."""

    t: float
    emotion: str | None  # the stable emotion; None = no face (or not enough evidence yet)
    confidence: float  # the stable emotion's averaged score (0 when None)
    scores: dict[str, float] = field(default_factory=dict)  # the window's averaged scores
    face: bool = False  # a face was seen in this frame
    changed: bool = False  # the stable emotion changed with this frame
    faces: int = 0  # faces in view in this frame


class Smoother:
    def __init__(self, labels: tuple[str, ...] | list[str], cfg: SmoothingConfig | None = None) -> None:
        self.labels = tuple(labels)
        self.s = cfg or SmoothingConfig()
        self._window: deque[tuple[float, np.ndarray]] = deque()
        self._stable: str | None = None
        self._pending: str | None = None
        self._pending_since = 0.0
        self._last_face_t: float | None = None

    @property
    def emotion(self) -> str | None:
        return self._stable

    def reset(self) -> None:
        """Forget everything (e.g. when the camera is closed for privacy)."""
        self._window.clear()
        self._stable = None
        self._pending = None
        self._last_face_t = None

    def combine(self, faces: Sequence[FaceScores]) -> np.ndarray | None:
        """One frame's score vector: the largest face's, or (room) the faces' average weighted by area
        times the face's top score, so a big, clear face counts more than a small, unsure one."""
        if not faces:
            return None
        vecs = np.array([[f.scores.get(k, 0.0) for k in self.labels] for f in faces], dtype=np.float64)
        if self.s.faces == "largest" or len(faces) == 1:
            return vecs[int(np.argmax([f.area for f in faces]))]
        weights = np.array([max(f.area, 0.0) for f in faces]) * vecs.max(axis=1)
        if weights.sum() <= 0:
            return vecs.mean(axis=0)
        return (weights[:, None] * vecs).sum(axis=0) / weights.sum()

    def update(self, t: float, scores: Mapping[str, float] | Sequence[FaceScores] | None) -> SmoothedEmotion:
        """Feed one frame: the faces in view (each with its scores and area), one face's scores, or None
        (or no faces) when nobody is in view."""
        s = self.s
        faces: Sequence[FaceScores] = [] if scores is None else [FaceScores(scores)] if isinstance(scores, Mapping) else scores
        vec = self.combine(faces)
        if vec is not None:
            self._last_face_t = t
            if vec.max() >= s.min_confidence:
                self._window.append((t, vec))
        while self._window and self._window[0][0] < t - s.window_s:
            self._window.popleft()

        before = self._stable
        if self._last_face_t is None or t - self._last_face_t >= s.no_face_s:
            if self._stable is not None:
                log.debug("no face for %.1f s: stable emotion cleared", s.no_face_s)
            self._window.clear()
            self._stable = None
            self._pending = None
            mean = None
        elif len(self._window) >= s.min_frames:
            mean = np.mean([v for _, v in self._window], axis=0)
            self._decide(t, mean)
        else:
            mean = np.mean([v for _, v in self._window], axis=0) if self._window else None

        avg = {k: float(v) for k, v in zip(self.labels, mean)} if mean is not None else {}
        conf = avg.get(self._stable, 0.0) if self._stable else 0.0
        return SmoothedEmotion(
            t=t,
            emotion=self._stable,
            confidence=conf,
            scores=avg,
            face=vec is not None,
            changed=self._stable != before,
            faces=len(faces),
        )

    def _decide(self, t: float, mean: np.ndarray) -> None:
        s = self.s
        leader = self.labels[int(np.argmax(mean))]
        if leader == self._stable:
            self._pending = None
            return
        current = mean[self.labels.index(self._stable)] if self._stable else 0.0
        if mean[self.labels.index(leader)] - current < s.margin and self._stable is not None:
            self._pending = None
            return
        if self._pending != leader:
            self._pending = leader
            self._pending_since = t
        if t - self._pending_since >= s.dwell_s:
            log.debug("stable emotion %s -> %s at t=%.2f", self._stable, leader, t)
            self._stable = leader
            self._pending = None
