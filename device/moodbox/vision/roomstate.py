"""The vision and diagnostic parts of the published state, shaped for Home Assistant's recorder.

Every change of an entity's state or attributes is a row in Home Assistant's database, and a talking
person moves the raw figures every frame. So what is published changes only when it means something,
without ever hiding a change of emotion or presence:

- the emotion's attributes are the smoothed scores the held emotion was chosen from (they change with
  the emotion and never show another emotion ahead of it);
- the confidence is rounded to a coarse step and moves only when the measurement is a full step away,
  and then at most once per ``confidence_interval_s`` (a new emotion brings its own at once);
- presence turns on with the first face and off only after ``presence_hold_s`` without one (the same
  time after which the smoother says "nobody in view");
- fps and inference time change at most once per ``diagnostics_interval_s``;
- anything not measured (privacy, no frame yet, nobody in view) is None, never a made-up 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moodbox.config import Config
from moodbox.vision.pipeline import FrameResult
from moodbox.vision.smoothing import SmoothedEmotion


def step_confidence(value: float, step: float) -> float:
    """The confidence as published: rounded to ``mqtt.confidence_step``; the log shows the same figure."""
    return round(round(value / step) * step, 3)


class StateShaper:
    """Fed every processed frame (:meth:`observe`), read for each published state. Owned by the daemon's
    loop, which alone calls it (so it needs no lock)."""

    def __init__(
        self,
        confidence_step: float = 0.1,
        confidence_interval_s: float = 10.0,
        diagnostics_interval_s: float = 60.0,
        presence_hold_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.confidence_step = confidence_step
        self.confidence_interval_s = confidence_interval_s
        self.diagnostics_interval_s = diagnostics_interval_s
        self.presence_hold_s = presence_hold_s  # the smoother's "nobody in view" time
        self._clock = clock
        self._emotion: str | None = None
        self._scores: dict[str, float] = {}
        self._confidence: float | None = None
        self._confidence_t = -1e18
        self._face: bool | None = None
        self._faces: int | None = None
        self._last_face_t: float | None = None
        self._diag: tuple[float | None, float | None] = (None, None)
        self._diag_at = -1e18

    @classmethod
    def from_config(cls, cfg: Config) -> StateShaper:
        m = cfg.mqtt
        return cls(m.confidence_step, m.confidence_interval_s, m.diagnostics_interval_s, cfg.smoothing.no_face_s)

    def observe(self, smoothed: SmoothedEmotion, faces: int) -> None:
        step = self.confidence_step
        if smoothed.face:
            self._last_face_t = smoothed.t
        self._face = self._last_face_t is not None and smoothed.t - self._last_face_t < self.presence_hold_s
        self._faces = faces
        held = smoothed.emotion
        if held != self._emotion:
            self._emotion = held
            self._scores = {k: round(v, 2) for k, v in smoothed.scores.items()} if held else {}
            self._confidence = step_confidence(smoothed.confidence, step) if held else None
            self._confidence_t = smoothed.t
        elif (
            held is not None
            and abs(smoothed.confidence - (self._confidence or 0.0)) >= step - 1e-9
            and smoothed.t - self._confidence_t >= self.confidence_interval_s
        ):
            self._confidence = step_confidence(smoothed.confidence, step)
            self._confidence_t = smoothed.t

    def clear(self) -> None:
        """The camera is closed or gone: nothing about the room is known."""
        self._emotion = None
        self._scores = {}
        self._confidence = None
        self._face = None
        self._faces = None
        self._last_face_t = None

    def vision(self) -> dict[str, Any]:
        return {
            "emotion": self._emotion,
            "confidence": self._confidence,
            "scores": dict(self._scores),
            "face": self._face,
            "faces": self._faces,
        }

    def diagnostics(self, fps: float | None, inference_ms: float | None) -> dict[str, Any]:
        """The published fps and inference time: a figure appearing or vanishing shows at once, a new
        value of a known figure at most once per interval."""
        now = self._clock()
        new = (None if fps is None else round(fps, 1), None if inference_ms is None else round(inference_ms, 1))
        old = self._diag
        known_changed = (old[0] is None) != (new[0] is None) or (old[1] is None) != (new[1] is None)
        if new != old and (known_changed or now - self._diag_at >= self.diagnostics_interval_s):
            self._diag = new
            self._diag_at = now
        fps_out, ms_out = self._diag
        return {"fps": fps_out, "inference_ms": ms_out}


@dataclass
class Stats:
    """Exponential moving averages, as Frigate reports them; None until measured."""

    fps: float | None = None
    inference_ms: float | None = None
    _last_t: float | None = None

    def update(self, result: FrameResult, alpha: float = 0.1) -> None:
        now = time.monotonic()
        if self._last_t is not None:
            dt = now - self._last_t
            if dt > 0:
                self.fps = 1.0 / dt if self.fps is None else (1 - alpha) * self.fps + alpha / dt
        self._last_t = now
        ms = result.timings_ms.get("classify", 0.0) / max(1, len(result.faces)) if result.faces else None
        if ms is not None:
            self.inference_ms = ms if self.inference_ms is None else (1 - alpha) * self.inference_ms + alpha * ms

    def idle(self) -> None:
        """No frames (camera closed or gone): the frame rate is not known, not 0."""
        self.fps = None
        self._last_t = None
