"""What the listener hears, measured: the stable emotion and the mood the music follows, frame by frame,
against a full-scan reference (``detection.tracking: false``: a full Haar scan of every frame and every
face classified with every look, everything else equal).

Per-frame agreement (this frame's faces and emotion) is a diagnostic; the music follows the smoothed,
stable emotion, so that is what the box is judged by. Where the two readings differ but the reference's
own smoothed scores do not favour its emotion over the box's by more than ``CLEAR_MARGIN``, either
reading fits the faces: those frames are left out of the "where the reference is clear" figure (the
owner's definition, issue 26: on the code it was written for it gives the owner's 98.1 % on GRID).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from moodbox.config import Config
from moodbox.music.mood import MoodIntent, MoodPolicy
from moodbox.vision.emotions import EmotionClassifier
from moodbox.vision.pipeline import VisionPipeline
from moodbox.vision.sources import Frame

CLEAR_MARGIN = 0.1


@dataclass(frozen=True)
class Heard:
    """One frame as the listener hears it."""

    t: float
    emotion: str | None  # the stable emotion
    scores: dict[str, float]  # the smoother's scores it was chosen from
    mood: str  # the mood the music follows (the last emotion's while nobody is in view)


def reference_config(cfg: Config) -> Config:
    return cfg.model_copy(update={"detection": cfg.detection.model_copy(update={"tracking": False})})


def listen(cfg: Config, frames: list[Frame], classifier: EmotionClassifier) -> list[Heard]:
    pipe = VisionPipeline(cfg, classifier)
    intent = MoodIntent(MoodPolicy.from_config(cfg.music, classifier.labels))
    out = []
    for f in frames:
        sm = pipe.process(f).smoothed
        intent.see(sm.emotion)
        plan = intent.plan()
        out.append(Heard(f.t, sm.emotion, dict(sm.scores), plan.mood if plan else ""))
    return out


def _changes(heard: list[Heard]) -> list[tuple[float, str]]:
    """(time, new emotion) of each change of the stable emotion; nobody in view changes nothing (the
    music keeps playing)."""
    out: list[tuple[float, str]] = []
    last: str | None = None
    for h in heard:
        if h.emotion is not None and h.emotion != last:
            if last is not None:
                out.append((h.t, h.emotion))
            last = h.emotion
    return out


def _clear(box: Heard, ref: Heard) -> bool:
    """Whether a frame counts in the "where the reference is clear" figure: the two agree, or the
    reference's own smoothed scores favour its stable emotion over the box's by more than CLEAR_MARGIN.
    Where they do not (a near tie, or the reference's dwell still holding an emotion its scores have
    left), either reading fits the faces. A box with no stable emotion, or a reference with none, counts."""
    if box.emotion == ref.emotion or box.emotion is None or ref.emotion is None or not ref.scores:
        return True
    return ref.scores.get(ref.emotion, 0.0) - ref.scores.get(box.emotion, 0.0) > CLEAR_MARGIN


def compare(box: list[Heard], ref: list[Heard]) -> dict[str, float | int | None]:
    """Agreement of the box with the reference: stable emotion and mood, overall and where the reference
    is clear; how many stable changes each makes; how long a reference change takes to show in the box
    (median and worst, seconds; a change the box never makes counts as missed)."""
    n = len(box)
    clear = [i for i in range(n) if _clear(box[i], ref[i])]
    lags: list[float] = []
    missed = 0
    for t, emotion in _changes(ref):
        i = next(k for k, h in enumerate(ref) if h.t >= t)
        j = next((k for k in range(i, n) if box[k].emotion == emotion), None)
        if j is None:
            missed += 1
        else:
            lags.append(box[j].t - t)
    return {
        "emotion": sum(b.emotion == r.emotion for b, r in zip(box, ref)) / n,
        "emotion_clear": sum(box[i].emotion == ref[i].emotion for i in clear) / len(clear) if clear else 1.0,
        "mood": sum(b.mood == r.mood for b, r in zip(box, ref)) / n,
        "mood_clear": sum(box[i].mood == ref[i].mood for i in clear) / len(clear) if clear else 1.0,
        "clear_frames": len(clear) / n,
        "changes": len(_changes(box)),
        "changes_reference": len(_changes(ref)),
        "lag_median_s": round(statistics.median(lags), 3) if lags else None,
        "lag_max_s": round(max(lags), 3) if lags else None,
        "missed_changes": missed,
    }


def agreement(cfg: Config, frames: list[Frame], classifier: EmotionClassifier) -> dict[str, float | int | None]:
    return compare(listen(cfg, frames, classifier), listen(reference_config(cfg), frames, classifier))


def describe(a: dict[str, float | int | None]) -> str:
    lag = (
        "no change to follow" if a["lag_median_s"] is None else f"median {a['lag_median_s']:.2f} s, worst {a['lag_max_s']:.2f} s"
    )
    return (
        f"what the listener hears, against a full scan of every frame: stable emotion {a['emotion']:.1%} "
        f"({a['emotion_clear']:.1%} where the reference is clear, {a['clear_frames']:.0%} of frames), mood {a['mood']:.1%} "
        f"({a['mood_clear']:.1%}); stable changes {a['changes']} box / {a['changes_reference']} reference; "
        f"a reference change shows in the box after {lag}, {a['missed_changes']} missed"
    )
