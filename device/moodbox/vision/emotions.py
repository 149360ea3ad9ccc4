"""Facial-emotion classification with a full-integer int8 TFLite model run by LiteRT.

Everything model-specific (labels, input size, scale/offset, face margin) comes from the metadata JSON
beside the model (docs/model.md), so any model that carries correct metadata can be dropped in.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from moodbox.vision.faces import Face
from moodbox.vision.looks import score_views
from moodbox.vision.model import DEFAULT_MODEL, MODELS_DIR, ModelError, ModelMeta
from moodbox.vision.native import quiet_native_info

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_MODEL", "MODELS_DIR", "EmotionClassifier", "EmotionScores", "ModelError", "ModelMeta", "score_views"]


@dataclass(frozen=True)
class EmotionScores:
    """Class probabilities for one face, in the model's label order."""

    box: tuple[int, int, int, int]
    scores: dict[str, float]

    @property
    def emotion(self) -> str:
        return max(self.scores, key=self.scores.__getitem__)

    @property
    def confidence(self) -> float:
        return self.scores[self.emotion]

    def as_dict(self) -> dict[str, Any]:
        return {
            "box": list(self.box),
            "emotion": self.emotion,
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
        }


@contextlib.contextmanager
def _ctrl_c_deferred() -> Iterator[None]:
    """Hold a Ctrl-C back until the block ends, then hand it to the SIGINT handler there was. LiteRT's
    native module is built with pybind11, whose module initialisation turns any exception into
    ``ImportError('initialization failed')``: a Ctrl-C landing there (a second or two at start on a Pi)
    read as "no TFLite interpreter installed". (Blocking the signal would not do: another thread, numpy's
    BLAS for one, would take it.)"""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield  # only the main thread may set handlers; an ignored or default SIGINT needs no care
        return
    caught: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            previous(signal.SIGINT, None)  # as if it came now: Python's default raises KeyboardInterrupt


def _interpreter_class():
    """LiteRT first; tflite-runtime where only that is installed (older Pi images)."""
    with _ctrl_c_deferred():
        try:
            from ai_edge_litert.interpreter import Interpreter

            return Interpreter
        except ImportError:
            pass
        try:
            from tflite_runtime.interpreter import Interpreter

            return Interpreter
        except ImportError:
            pass
    raise ModelError("no TFLite interpreter installed: pip install ai-edge-litert (or tflite-runtime)")


def crop_face(image: np.ndarray, box: tuple[int, int, int, int], margin: float) -> np.ndarray:
    """Grow the box by ``margin`` of its size on every side (clamped to the image) and cut it out."""
    x, y, w, h = box
    dx, dy = int(round(w * margin)), int(round(h * margin))
    H, W = image.shape[:2]
    x0, y0 = max(0, x - dx), max(0, y - dy)
    x1, y1 = min(W, x + w + dx), min(H, y + h + dy)
    return image[y0:y1, x0:x1]


class EmotionClassifier:
    """One LiteRT interpreter; ``classify`` scores every face of a frame."""

    _xnnpack_announced: ClassVar[bool] = False

    def __init__(self, model_path: str | Path | None = None, threads: int = 1) -> None:
        self.model_path = Path(model_path) if model_path else DEFAULT_MODEL
        self.meta_path = self.model_path.with_suffix(".json")
        if not self.model_path.is_file():
            raise ModelError(f"{self.model_path}: model file not found")
        self.meta = ModelMeta.load(self.meta_path)
        try:
            self._interp = _interpreter_class()(model_path=str(self.model_path), num_threads=max(1, threads))
            with quiet_native_info() as native:  # LiteRT announces its XNNPACK delegate on fd 2 here
                self._interp.allocate_tensors()
            # LiteRT announces the delegate only for the first interpreter of a process (check-config's
            # model check is often that one), so what it said once holds for every later one
            if any("XNNPACK" in line for line in native):
                EmotionClassifier._xnnpack_announced = True
            self.xnnpack = EmotionClassifier._xnnpack_announced
        except ModelError:
            raise
        except Exception as exc:  # LiteRT raises ValueError/RuntimeError for corrupt flatbuffers
            raise ModelError(f"{self.model_path}: not a valid TFLite model ({exc})") from None
        self._in = self._interp.get_input_details()[0]
        self._out = self._interp.get_output_details()[0]
        self._check_matches_meta()
        self._in_q: tuple[float, int] = self._in["quantization"]
        self._out_q: tuple[float, int] = self._out["quantization"]
        self._in_dtype = self._in["dtype"]
        # worked out once, not per inference (an inference is ~0.8 ms; these checks were 5 % of it)
        self._in_int = np.issubdtype(self._in_dtype, np.integer)
        self._in_range = (np.iinfo(self._in_dtype).min, np.iinfo(self._in_dtype).max) if self._in_int else (0, 0)
        self._out_int = np.issubdtype(self._out["dtype"], np.integer)
        log.info(
            "emotion model %s (%s input, %dx%d, labels %s)%s",
            self.model_path.name,
            np.dtype(self._in_dtype).name,
            self.meta.width,
            self.meta.height,
            ",".join(self.meta.labels),
            ", XNNPACK delegate" if self.xnnpack else "",
        )

    @property
    def labels(self) -> tuple[str, ...]:
        return self.meta.labels

    def _check_matches_meta(self) -> None:
        shape = tuple(int(s) for s in self._in["shape"])
        channels = 1 if self.meta.color == "gray" else 3
        expected = (1, self.meta.height, self.meta.width, channels)
        if len(shape) == 3:
            shape = (*shape, 1)
        if shape != expected:
            raise ModelError(
                f"{self.meta_path}: metadata says input {self.meta.width}x{self.meta.height} {self.meta.color}, "
                f"but {self.model_path.name} takes a tensor of shape {list(self._in['shape'])}"
            )
        n_out = int(np.prod(self._out["shape"]))
        if n_out != len(self.meta.labels):
            raise ModelError(
                f"{self.meta_path}: metadata lists {len(self.meta.labels)} labels, "
                f"but {self.model_path.name} outputs {n_out} scores"
            )

    def preprocess(self, image: np.ndarray, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """Crop (with the face margin), resize and scale one face exactly as the model was trained.

        ``image`` is grey (H, W) or BGR (H, W, 3); returns the float network input (1, h, w, c)."""
        if box is not None:
            image = crop_face(image, box, self.meta.face_margin)
        if self.meta.color == "gray" and image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        elif self.meta.color == "rgb":
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB if image.ndim == 2 else cv2.COLOR_BGR2RGB)
        size = (self.meta.width, self.meta.height)
        if image.shape[1] != size[0] or image.shape[0] != size[1]:
            shrink = image.shape[0] > size[1]
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        x = image.astype(np.float32) * self.meta.scale + self.meta.offset
        return x.reshape(1, self.meta.height, self.meta.width, -1)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Run the network on one preprocessed input; returns float probabilities."""
        if self._in_int:
            s, zp = self._in_q
            lo, hi = self._in_range
            x = np.clip(np.round(x / s + zp), lo, hi).astype(self._in_dtype)
        else:
            x = x.astype(self._in_dtype)
        self._interp.set_tensor(self._in["index"], x)
        self._interp.invoke()
        y = self._interp.get_tensor(self._out["index"]).reshape(-1)
        if self._out_int:
            s, zp = self._out_q
            y = (y.astype(np.float32) - zp) * s
        return y.astype(np.float32)

    def predict_batch(self, batch: np.ndarray) -> np.ndarray:
        """``predict`` for each of an (N, h, w, c) batch (one inference each: the interpreter's input is
        one face, and batching bought nothing on one thread when measured)."""
        return np.stack([self.predict(batch[i : i + 1]) for i in range(batch.shape[0])])

    def infer(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for one preprocessed face (1, h, w, c) as the metadata asks: with its mirror image
        and, when it is ambiguous, tilted looks averaged in (see :func:`score_views`)."""
        return score_views(self.predict_batch, x, self.meta)[0]

    def classify_face(self, image: np.ndarray, box: tuple[int, int, int, int] | None = None) -> EmotionScores:
        probs = self.infer(self.preprocess(image, box))
        if box is None:
            box = (0, 0, int(image.shape[1]), int(image.shape[0]))
        x, y, w, h = (int(v) for v in box)
        return EmotionScores(box=(x, y, w, h), scores=dict(zip(self.labels, map(float, probs))))

    def classify(self, image: np.ndarray, faces: list[Face]) -> list[EmotionScores]:
        return [self.classify_face(image, f.box) for f in faces]
