"""``moodbox bench``: what the vision pipeline costs, measured on the real code with one thread.

Reports per-stage p50/p95 latency and end-to-end frames/s over a file or folder processed as fast as
possible; what the listener hears (the stable emotion and the mood) against a full-scan reference
(:mod:`moodbox.listening`: the figure the box is judged by); as a diagnostic, how often the faces found
(and the largest face's emotion) agree with a plain full-resolution Haar pass; resident memory after warm-up; and, in live mode (frames paced as a camera at
``camera.fps`` delivers them), the CPU share with a face in view and with nobody in view.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from moodbox import listening
from moodbox.config import Config
from moodbox.vision.emotions import EmotionClassifier
from moodbox.vision.faces import FaceDetector, iou, to_gray, use_threads
from moodbox.vision.pipeline import VisionPipeline
from moodbox.vision.sources import Frame, LiveSource, open_source

# The public-domain sample film, shipped inside the package (in the repository a link to samples/), so
# that `moodbox bench` works on a box where the package was installed without the repository.
DEFAULT_SOURCE = Path(__file__).parent / "samples" / "short_hamilton_clip.mp4"


def memory() -> tuple[float, float | None, float | None]:
    """Resident memory in MB: all of it, the process's own (anonymous: heap, buffers, Python objects) and
    shared libraries' pages mapped into it. The last part is page cache, reclaimable, and varies with it:
    a just-installed library is wholly cached and the kernel maps 64 KB around every page touched (the
    same daemon read 57 MB of such pages in a settled checkout, 102 MB in a fresh clone)."""
    got: dict[str, float] = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                key = line.split(":", 1)[0]
                if key in ("VmRSS", "RssAnon", "RssFile"):
                    got[key] = int(line.split()[1]) / 1024.0
    except OSError:
        pass
    if "VmRSS" not in got:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, None, None
    return got["VmRSS"], got.get("RssAnon"), got.get("RssFile")


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


@dataclass
class BenchReport:
    source: str
    frames: int
    size: tuple[int, int]
    fps: float
    stages: dict[str, dict[str, float]]
    rss_mb: float
    rss_own_mb: float | None = None  # anonymous: what the process itself holds
    rss_libraries_mb: float | None = None  # shared libraries' pages (page cache)
    agreement: dict[str, float] = field(default_factory=dict)
    listener: dict[str, Any] = field(default_factory=dict)
    live: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "frames": self.frames,
            "size": list(self.size),
            "fps": round(self.fps, 1),
            "stages": self.stages,
            "rss_mb": round(self.rss_mb, 1),
            "rss_own_mb": None if self.rss_own_mb is None else round(self.rss_own_mb, 1),
            "rss_libraries_mb": None if self.rss_libraries_mb is None else round(self.rss_libraries_mb, 1),
            "agreement": self.agreement,
            "listener": self.listener,
            "live": self.live,
        }

    def text(self) -> str:
        lines = [
            f"source {self.source}: {self.frames} frames of {self.size[0]}x{self.size[1]}, one thread",
            f"end-to-end: {self.fps:.1f} frames/s",
            f"{'stage':<10} {'p50 ms':>8} {'p95 ms':>8}",
        ]
        for name, s in self.stages.items():
            lines.append(f"{name:<10} {s['p50_ms']:>8.2f} {s['p95_ms']:>8.2f}")
        parts = (
            f" (its own {self.rss_own_mb:.0f} MB, shared libraries' pages {self.rss_libraries_mb:.0f} MB)"
            if self.rss_own_mb is not None and self.rss_libraries_mb is not None
            else ""
        )
        lines.append(f"resident memory after warm-up: {self.rss_mb:.0f} MB{parts}")
        if self.agreement:
            a = self.agreement
            lines.append(
                f"agreement with a full-resolution Haar pass: all faces {a['faces']:.1%}, largest face {a['largest_face']:.1%}, "
                f"largest face's emotion {a['emotion']:.1%} of frames"
            )
        if self.listener:
            lines.append(listening.describe(self.listener))
        if self.live:
            lv = self.live
            lines.append(
                f"live at {lv['fps']:.0f} frames/s from {lv['camera']}: {lv['cpu_face_pct']:.1f} % of one core with a face, "
                f"{lv['cpu_empty_pct']:.1f} % with nobody in view"
            )
        return "\n".join(lines)


def _load_frames(source: str, limit: int | None) -> tuple[list[Frame], list[float]]:
    """Decode every frame once (timed), so the later passes measure the pipeline alone."""
    src = open_source(source, realtime=False, folder_fps=10.0)
    frames: list[Frame] = []
    decode_ms: list[float] = []
    it = iter(src.frames())
    while limit is None or len(frames) < limit:
        t0 = time.perf_counter()
        f = next(it, None)
        if f is None:
            break
        decode_ms.append((time.perf_counter() - t0) * 1e3)
        frames.append(f)
    src.close()
    if not frames:
        raise ValueError(f"{source}: no frames")
    return frames, decode_ms


def warm_up(
    cfg: Config, source: str, classifier: EmotionClassifier, frames: int = 20
) -> tuple[float, float | None, float | None]:
    """Resident memory (:func:`memory`) after the pipeline has processed its first frames, read as the daemon would
    show it: each frame decoded, processed and let go, before the benchmark holds every decoded frame
    (twenty 640x480 colour frames held at once added 18 MB that `moodbox run` never holds)."""
    pipe = VisionPipeline(cfg, classifier)
    src = open_source(source, realtime=False, folder_fps=10.0)
    seen = 0
    for frame in src.frames():
        if frame is not None:
            pipe.process(frame)
            seen += 1
        if seen >= frames:
            break
    src.close()
    frame = None  # (let the last one go too)
    return memory()


def _partner(face: tuple[int, int, int, int], boxes: list[tuple[int, int, int, int]]) -> int | None:
    """Index of the box that overlaps ``face`` best with IoU >= 0.5, if any."""
    scores = [iou(face, b) for b in boxes]
    best = int(np.argmax(scores)) if scores else -1
    return best if best >= 0 and scores[best] >= 0.5 else None


def _same_faces(got: list[tuple[int, int, int, int]], ref: list[tuple[int, int, int, int]]) -> bool:
    """The same faces as a set: as many, each reference face overlapping its own found face (IoU >= 0.5).
    Order does not matter: two faces of nearly one size swap places between passes."""
    if len(got) != len(ref):
        return False
    left = list(got)
    for r in ref:
        k = _partner(r, left)
        if k is None:
            return False
        left.pop(k)
    return True


def agreement(cfg: Config, frames: list[Frame], classifier: EmotionClassifier) -> dict[str, float]:
    """Fractions of frames where the pipeline agrees with a plain full-resolution Haar pass: the same set
    of faces (each reference face overlapped by a found face with IoU >= 0.5, none extra); the reference's
    largest face found; and that face's emotion as the pipeline classified it against the emotion of the
    reference's box (nobody in view agrees with nobody found)."""
    pipe = VisionPipeline(cfg, classifier)
    full = FaceDetector(cfg.detection.model_copy(update={"detect_width": 0}))
    faces_ok = largest_ok = emotion_ok = 0
    for f in frames:
        got = pipe.process(f).faces
        gray = to_gray(f.image)
        ref = full.detect(gray)[: cfg.detection.max_faces]
        got_boxes = [g.box for g in got]
        faces_ok += _same_faces(got_boxes, [r.box for r in ref])
        if not ref:
            largest_ok += not got
            emotion_ok += not got
            continue
        k = _partner(ref[0].box, got_boxes)
        if k is not None:
            largest_ok += 1
            emotion_ok += got[k].emotion == classifier.classify_face(gray, ref[0].box).emotion
    n = len(frames)
    return {"faces": faces_ok / n, "largest_face": largest_ok / n, "emotion": emotion_ok / n}


def clip_fps(frames: list[Frame], default: float = 30.0) -> float:
    """The rate a clip was recorded at, from its frames' timestamps: a live replay must deliver it at that
    rate, or the scene is fast-forwarded and looks busier than it is."""
    steps = np.diff([f.t for f in frames])
    step = float(np.median(steps)) if len(steps) else 0.0
    return float(np.clip(1.0 / step, 1.0, 120.0)) if step > 0 else default


class _ReplayCamera:
    """A camera made of decoded frames, delivering them at ``fps`` (30 by default, as a Pi camera)."""

    def __init__(self, images: list[np.ndarray], fps: float = 30.0) -> None:
        self.images = images
        self.period = 1.0 / fps
        self.i = 0
        self.next = time.monotonic()

    def read(self) -> np.ndarray:
        self.next += self.period
        delay = self.next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        img = self.images[self.i % len(self.images)]
        self.i += 1
        return img

    def release(self) -> None:
        pass


def as_the_camera_delivers(cfg: Config, images: list[np.ndarray], source_fps: float) -> tuple[list[np.ndarray], float, str]:
    """A clip as the configured camera hands it over: the Pi camera (``camera.source: picamera2``, the
    default) is asked for ``camera.fps`` frames a second and delivers grey (its Y plane); any other camera
    delivers colour at its own rate."""
    if cfg.camera.source == "picamera2":
        step = max(1, round(source_fps / cfg.camera.fps))
        return [to_gray(im) for im in images[::step]], source_fps / step, "the Pi camera (grey at camera.fps)"
    return images, source_fps, "a colour camera at the clip's rate"


def live_cpu(
    cfg: Config, images: list[np.ndarray], seconds: float, classifier: EmotionClassifier, source_fps: float = 30.0
) -> float:
    """Percent of one core the whole process uses while processing, at camera.fps, a camera that delivers
    ``images`` at ``source_fps`` (the clip's own rate: faster would fast-forward the scene)."""
    pipe = VisionPipeline(cfg, classifier)
    src = LiveSource("bench", lambda: _ReplayCamera(images, source_fps), fps=cfg.camera.fps)
    stop_at = None
    cpu0 = wall0 = 0.0
    for i, frame in enumerate(src.frames(tick_s=0.5)):
        if frame is not None:
            pipe.process(frame)
        if i == 5:  # warm-up done
            cpu0, wall0 = time.process_time(), time.monotonic()
            stop_at = wall0 + seconds
        if stop_at and time.monotonic() >= stop_at:
            break
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - wall0
    src.close()
    return 100.0 * cpu / wall if wall > 0 else 0.0


def run(
    cfg: Config, source: str | None = None, limit: int | None = None, live_seconds: float = 10.0, check_agreement: bool = True
) -> BenchReport:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    use_threads(1)  # what the daemon runs by default (detection.threads)
    source = source or str(DEFAULT_SOURCE)
    classifier = EmotionClassifier(cfg.model.path, threads=1)
    rss, own, libraries = warm_up(cfg, source, classifier)
    frames, decode_ms = _load_frames(source, limit)
    pipe = VisionPipeline(cfg, classifier)
    stages: dict[str, list[float]] = {
        "decode": decode_ms[10:] or decode_ms,
        "detect": [],
        "classify": [],
        "smooth": [],
        "total": [],
    }
    t0 = time.perf_counter()
    for f in frames:
        r = pipe.process(f)
        for k in ("detect", "classify", "smooth"):
            stages[k].append(r.timings_ms[k])
        stages["total"].append(sum(r.timings_ms.values()))
    vision_s = time.perf_counter() - t0
    end_to_end_s = vision_s + sum(decode_ms) / 1e3
    h, w = frames[0].image.shape[:2]
    report = BenchReport(
        source=source,
        frames=len(frames),
        size=(w, h),
        fps=len(frames) / end_to_end_s,
        stages={k: {"p50_ms": round(_pct(v, 50), 3), "p95_ms": round(_pct(v, 95), 3)} for k, v in stages.items()},
        rss_mb=rss,
        rss_own_mb=own,
        rss_libraries_mb=libraries,
    )
    if check_agreement:
        report.agreement = {k: round(v, 4) for k, v in agreement(cfg, frames, classifier).items()}
        heard = listening.agreement(cfg, frames, classifier)
        report.listener = {k: round(v, 4) if isinstance(v, float) else v for k, v in heard.items()}
    if live_seconds > 0:
        images = [f.image for f in frames]
        # An empty room as a camera sees it: a still wall with sensor noise that differs from frame to frame.
        rng = np.random.default_rng(0)
        blank = [np.clip(110 + rng.normal(0.0, 2.0, images[0].shape), 0, 255).astype(np.uint8) for _ in range(10)]
        faces, faces_fps, camera = as_the_camera_delivers(cfg, images, clip_fps(frames))
        empty, empty_fps, _ = as_the_camera_delivers(cfg, blank, 30.0)
        report.live = {
            "fps": cfg.camera.fps,
            "camera": camera,
            "cpu_face_pct": round(live_cpu(cfg, faces, live_seconds, classifier, faces_fps), 2),
            "cpu_empty_pct": round(live_cpu(cfg, empty, live_seconds, classifier, empty_fps), 2),
        }
    return report
