"""Where faces may be in a moving scene, cheaply: MediaPipe's full-range face detector (BlazeFace, 192x192,
LiteRT) proposes boxes, and the Haar cascade's exact search around each gives the box of record.

A moving camera or a cut changes the whole picture, and a full Haar scan of a 640x360 frame costs about
45 ms here; the proposer costs about 6 ms, and the exact searches around its boxes return what a full
scan returns there (:meth:`FaceDetector.search`). So the faces found are still Haar's, with Haar's boxes
(the crops the emotion model was trained on); the proposer only says where to look. Full Haar scans still
run at the start, every ``detection.full_scan_s`` and for an empty room."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from moodbox.support.heap import give_back
from moodbox.vision.changemap import Box, clip_box
from moodbox.vision.emotions import _interpreter_class
from moodbox.vision.faces import Face, FaceDetector, Scan, iou
from moodbox.vision.model import ModelError
from moodbox.vision.native import quiet_native_info

log = logging.getLogger(__name__)

MODEL = Path(__file__).resolve().parent.parent / "models" / "face_detection_full_range_sparse.tflite"
_SIDE = 192  # the model's input: 192x192 RGB in [-1, 1]
_GRID = 48  # one anchor per cell of a 48x48 grid (stride 4), each a unit box at the cell's centre
THRESHOLD = 0.5  # a proposal's score (on GRID, the film and the scripted clips, 0.5 kept every face the
# film's listener figures need; 0.3 proposed twice as many boxes for 5 of its 189 Haar faces)
GROW = 0.5  # the search around a proposal: its box grown by this much of its width each side ...
SIZES = (0.6, 2.0)  # ... at these multiples of its width. Measured on GRID, the film and the scripted clips:
# Haar's box is 0.9-1.4x the proposal's wide (5th-95th percentile), its centre within 0.12 of the width,
# and a face's raw hits span 0.65-1.5x Haar's box (0.75 and 0.5-2.2 cost the film 1.4 % more, for nothing)
IDLE_S = 60.0  # released after this long without a look (a reload costs about 15 ms)


class FaceProposer:
    """Candidate face boxes, in frame pixels, from one grey frame (the Pi camera hands on grey).

    The interpreter is loaded the first time it is asked (about 10 MB with LiteRT's XNNPACK delegate) and
    released when it has not been asked for a while (:meth:`release`): a box whose camera sits still
    rarely sees its whole picture change, and holds it only around such moments. A model that will not
    load is said once, and the tracker falls back to full scans."""

    def __init__(self, model: Path = MODEL, threads: int = 1) -> None:
        if not model.is_file():
            raise ModelError(f"{model}: face proposal model not found")
        self.model = model
        self.threads = threads
        self._interp: Any = None
        self.broken = False

    def _load(self) -> None:
        try:
            self._interp = _interpreter_class()(model_path=str(self.model), num_threads=max(1, self.threads))
            with quiet_native_info():
                self._interp.allocate_tensors()
        except Exception as exc:  # LiteRT raises ValueError/RuntimeError for a corrupt flatbuffer
            self.broken = True
            log.error("%s: not a valid TFLite model (%s); full scans instead", self.model, exc)
            return
        self._in = self._interp.get_input_details()[0]["index"]
        outs = sorted(self._interp.get_output_details(), key=lambda d: int(d["shape"][-1]), reverse=True)
        self._boxes, self._scores = outs[0]["index"], outs[1]["index"]  # (1, 2304, 16) and (1, 2304, 1)
        centres = (np.arange(_GRID) + 0.5) / _GRID
        ax, ay = np.meshgrid(centres, centres)
        self._anchors = np.stack([ax.ravel(), ay.ravel()], axis=1).astype(np.float32)
        log.debug("face proposals loaded from %s", self.model)

    def release(self) -> None:
        """Drop the interpreter and hand its memory back to the system; the next look loads it again."""
        if self._interp is None:
            return
        self._interp = None
        give_back()
        log.debug("face proposals released")

    def propose(self, gray: np.ndarray, threshold: float = THRESHOLD) -> list[Box] | None:
        """Boxes (x, y, w, h) of likely faces, most likely first, overlapping ones dropped; None when the
        model will not load (said once: the caller scans in full)."""
        if self._interp is None and not self.broken:
            self._load()
        if self.broken:
            return None
        h, w = gray.shape[:2]
        side = max(h, w)
        ox, oy = (side - w) // 2, (side - h) // 2
        square = np.zeros((side, side), np.uint8)  # letterboxed, as the model was trained
        square[oy : oy + h, ox : ox + w] = gray
        x = cv2.resize(square, (_SIDE, _SIDE), interpolation=cv2.INTER_AREA).astype(np.float32) / 127.5 - 1.0
        self._interp.set_tensor(self._in, np.repeat(x[None, :, :, None], 3, axis=3))
        self._interp.invoke()
        raw = self._interp.get_tensor(self._boxes)[0]
        logits = np.clip(self._interp.get_tensor(self._scores)[0, :, 0], -80.0, 80.0)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = np.flatnonzero(scores > threshold)
        out: list[Box] = []
        for i in keep[np.argsort(-scores[keep])]:
            cx = raw[i, 0] / _SIDE + self._anchors[i, 0]
            cy = raw[i, 1] / _SIDE + self._anchors[i, 1]
            bw, bh = raw[i, 2] / _SIDE, raw[i, 3] / _SIDE
            if bw <= 0 or bh <= 0:
                continue
            box = (int((cx - bw / 2) * side) - ox, int((cy - bh / 2) * side) - oy, int(bw * side), int(bh * side))
            if all(iou(box, o) < 0.3 for o in out):
                out.append(box)
        return out


def scan_proposed(detector: FaceDetector, gray: np.ndarray, proposals: list[Box]) -> Scan:
    """What a full scan finds near the proposals: the exact search around each, merged."""
    h, w = gray.shape[:2]
    faces: list[Face] = []
    hits: list[np.ndarray] = []
    for bx, by, bw, bh in proposals:
        m = GROW * bw
        region = clip_box(bx - m, by - m, bx + bw + m, by + bh + m, w, h)
        found = detector.search(gray, region, max(detector.settings.min_face, int(SIZES[0] * bw)), int(SIZES[1] * bw) + 1)
        faces += [f for f in found.faces if all(iou(f.box, o.box) < 0.5 for o in faces)]
        if len(found.hits):
            hits.append(found.hits)
    faces.sort(key=lambda f: f.area, reverse=True)
    return Scan(faces, np.concatenate(hits).astype(np.int32) if hits else np.zeros((0, 4), np.int32))
