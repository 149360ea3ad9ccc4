"""Following faces between full Haar scans, so that a talking, moving listener costs little and the
tracker still finds what a full-resolution scan would find."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any, overload

import cv2
import numpy as np

from moodbox.config import DetectionConfig
from moodbox.vision.changemap import Box, ChangeMap, cells, changed_parts, clip_box
from moodbox.vision.faces import Face, FaceDetector, hits_of, iou
from moodbox.vision.proposals import IDLE_S, FaceProposer, scan_proposed
from moodbox.vision.tuning import Tuning

log = logging.getLogger(__name__)

# The wide search (a face just lost or uncertain) looks at these fractions of the face's last size. Wider
# than a face grows or shrinks between two frames, because the cascade's raw hits for one face span about
# this range and are averaged into its box: cutting some off would move the box off the full scan's.
_SIZE_RANGE = (0.65, 1.5)
_MAX_SEARCHED = 0.2  # changed parts larger than this share of the frame are left to a full scan
_PATCH = 32  # side of the shrunk face image compared between frames to tell whether the head moved


@dataclass(frozen=True)
class Detection:
    faces: list[Face]
    kind: str  # "full" | "roi" | "still" | "idle"


@dataclass(frozen=True)
class _Track:
    """A face and where its raw hits were: the next frame's narrow search looks just around them."""

    face: Face
    span: Box  # x0, y0, x1, y1 of the raw hits' windows
    lo: int  # smallest and largest raw-hit side
    hi: int
    lost_at: float | None = None
    exact: Face | None = None  # the box the last search returned ...
    patch: np.ndarray | None = field(default=None, compare=False, repr=False)  # ... the face there, shrunk ...
    verified: float = -1e9  # ... and when
    seen: int = 0  # searches in a row that found it: a face found once may be a flicker of the cascade
    searched: float = -1e9  # a lost face: when it was last searched for where it was


def _patch(gray: np.ndarray, box: Box) -> np.ndarray:
    x, y, w, h = box
    return cv2.resize(gray[y : y + h, x : x + w], (_PATCH, _PATCH), interpolation=cv2.INTER_AREA).astype(np.float32)


def _track(face: Face, hits: np.ndarray) -> _Track:
    mine = hits_of(face, hits)
    if len(mine) == 0:
        x, y, w, h = face.box
        return _Track(face, (x, y, x + w, y + h), w, w)
    x0, y0 = int(mine[:, 0].min()), int(mine[:, 1].min())
    x1, y1 = int((mine[:, 0] + mine[:, 2]).max()), int((mine[:, 1] + mine[:, 3]).max())
    return _Track(face, (x0, y0, x1, y1), int(mine[:, 2].min()), int(mine[:, 2].max()))


class FaceTracker:
    """Makes Haar detection cheap without changing what it finds.

    A full scan finds the faces and the cascade's raw hits behind each. In the frames after it each face
    is searched for with the exact region search (:meth:`FaceDetector.search`) just around its last raw
    hits, at their sizes and one scale step either side; if the face's hits reach the edge of what was
    searched, or it is not found, a wide search (its box grown by ``roi_margin``, 0.65-1.5 times its size)
    follows. A face lost there calls for a full scan (at most every ``lost_rescan_s``), and stays searched
    for where it was, whenever its surroundings change (at most every ``ghost_s``), for ``idle_after_s``
    (Haar loses a turned or blurred head for a few frames).

    Newcomers: the cascade's answer for a window depends only on its pixels, and nobody comes in without
    changing them. So the tracker keeps, per 8x8 block, the mean grey level it last accounted for, and
    searches only the parts that changed since, discounting change around a tracked face and below it
    (the same person's head, shoulders and hands). A change over more than ``changed_share`` of the frame
    (a cut, a moving camera) calls for a full scan instead, at most every ``rescan_s`` while faces are
    tracked; and a full scan runs at least every ``full_scan_s`` whatever changed. A frame in which
    nothing moved is not looked at, and an empty room is scanned every ``idle_scan_s``."""

    def __init__(
        self, detector: FaceDetector, cfg: DetectionConfig | None = None, proposer: FaceProposer | None = None, **fixed: Any
    ) -> None:
        """``proposer``: where a moving scene's or a lost face's full scan is replaced by exact searches around
        its proposals (:mod:`moodbox.vision.proposals`). ``fixed``: the searches' geometry and timing where a
        test needs another (see :class:`Tuning`)."""
        self.detector = detector
        self.proposer = proposer
        self.s = Tuning.from_config(cfg or DetectionConfig(), **fixed)
        self.reset()

    def reset(self) -> None:
        self._tracks: list[_Track] = []
        self._ghosts: list[_Track] = []  # faces lost, searched for where they were when it changes there
        self._changes = ChangeMap()
        self._last_full = -1e9
        self._last_seen: float | None = None
        self._sides: tuple[tuple[int, int], list[int]] | None = None
        self._extra: list[_Track] = []  # other faces the searches for tracked ones came across this frame
        self._proposed_t = -1e9  # when the proposer last looked
        if self.proposer is not None:
            self.proposer.release()  # a privacy pause or a new source: nothing held while nobody is looked at

    @property
    def empty(self) -> bool:
        """Nobody tracked, and no lost face still searched for."""
        return not self._tracks and not self._ghosts

    @property
    def _faces(self) -> list[Face]:
        return [tr.face for tr in self._tracks]

    def _body(self, face: Face, w: int, h: int) -> Box:
        x, y, fw, fh = face.box
        s = self.s
        return clip_box(x - s.body_side * fw, y - 0.5 * fh, x + fw + s.body_side * fw, y + fh + s.body_below * fh, w, h)

    def _wide(self, face: Face, w: int, h: int) -> Box:
        x, y, fw, fh = face.box
        m = max(fw, fh) * self.s.roi_margin
        return clip_box(x - m, y - m, x + fw + m, y + fh + m, w, h)

    # -- searches ----------------------------------------------------------------------------------

    def _all_sides(self, w: int, h: int) -> list[int]:
        if self._sides is None or self._sides[0] != (w, h):
            self._sides = ((w, h), self.detector.sides(self.detector.settings.min_face, min(w, h)))
        return self._sides[1]

    def _narrow(self, gray: np.ndarray, tr: _Track) -> _Track | None:
        """Search just around a face's last raw hits; None when the answer may reach beyond (the hits touch
        the searched area's edge or its smallest or largest size) or the face is not there."""
        h, w = gray.shape[:2]
        sides = self._all_sides(w, h)
        if not sides:
            return None
        below = [sd for sd in sides if sd < tr.lo]
        above = [sd for sd in sides if sd > tr.hi]
        lo = below[-1] if below else sides[0]
        hi = above[0] if above else sides[-1]
        x0, y0, x1, y1 = tr.span
        g = max(2.0, self.s.motion * tr.face.box[2])
        region = clip_box(x0 - g, y0 - g, x1 + g, y1 + g, w, h)
        found = self.detector.search(gray, region, lo, hi)
        best = max(found.faces, key=lambda f: iou(f.box, tr.face.box), default=None)
        if best is None or iou(best.box, tr.face.box) < 0.3:
            return None
        self._extra += [_track(f, found.hits) for f in found.faces if f is not best]
        new = _track(best, found.hits)
        rx, ry, rw, rh = region
        tol = max(2, new.hi // 12)
        if (new.lo == lo and lo > sides[0]) or (new.hi == hi and hi < sides[-1]):
            return None
        sx0, sy0, sx1, sy1 = new.span
        if (
            (rx > 0 and sx0 - rx < tol)
            or (ry > 0 and sy0 - ry < tol)
            or (rx + rw < w and rx + rw - sx1 < tol)
            or (ry + rh < h and ry + rh - sy1 < tol)
        ):
            return None
        return new

    def _wide_search(self, gray: np.ndarray, face: Face) -> _Track | None:
        h, w = gray.shape[:2]
        fw = face.box[2]
        smallest = max(self.detector.settings.min_face, int(fw * _SIZE_RANGE[0]))
        found = self.detector.search(gray, self._wide(face, w, h), smallest, int(fw * _SIZE_RANGE[1]) + 1)
        best = max(found.faces, key=lambda f: iou(f.box, face.box), default=None)
        self._extra += [_track(f, found.hits) for f in found.faces if f is not best]
        return _track(best, found.hits) if best is not None else None

    def _hold(self, gray: np.ndarray, tr: _Track, t: float) -> _Track | None:
        """The face where it was, moved by the head's small shift, if the head has not really moved since
        the last search (and that was less than ``verify_s`` ago). Haar's own box for a still head jitters
        by a few pixels from frame to frame as the face talks and blinks; searching again for that costs
        about a full scan's worth of cascade work around the face, for an answer this one matches."""
        if tr.exact is None or tr.patch is None or tr.seen < 2 or t - tr.verified >= self.s.verify_s:
            return None
        x, y, w, h = tr.exact.box
        if w < self.s.hold_min * self.detector.settings.min_face:  # the cascade's answer flickers near its limit
            return None
        now = _patch(gray, tr.exact.box)
        (dx, dy), _ = cv2.phaseCorrelate(tr.patch, now)
        sx, sy = dx * w / _PATCH, dy * h / _PATCH
        if math.hypot(sx, sy) > self.s.hold_shift * w or float(np.mean(np.abs(now - tr.patch))) > self.s.hold_change:
            return None
        H, W = gray.shape[:2]
        box = (int(np.clip(x + round(sx), 0, W - w)), int(np.clip(y + round(sy), 0, H - h)), w, h)
        return replace(tr, face=Face(box))

    @overload
    def _stamp(self, gray: np.ndarray, tr: _Track, t: float) -> _Track: ...

    @overload
    def _stamp(self, gray: np.ndarray, tr: _Track | None, t: float) -> _Track | None: ...

    def _stamp(self, gray: np.ndarray, tr: _Track | None, t: float) -> _Track | None:
        if tr is None:
            return None
        return replace(tr, exact=tr.face, patch=_patch(gray, tr.face.box), verified=t, seen=tr.seen + 1)

    def _follow(self, gray: np.ndarray, tr: _Track, t: float) -> _Track | None:
        held = self._hold(gray, tr, t)
        if held is not None:
            return held
        found = self._narrow(gray, tr) if self.s.narrow else None
        found = found or self._wide_search(gray, tr.face)
        return self._stamp(gray, replace(found, seen=tr.seen if tr.lost_at is None else 0), t) if found else None

    def _full(self, gray: np.ndarray, t: float, proposed: bool = False) -> Detection:
        """A full scan; ``proposed``: where the proposer (if any) says faces may be, for a moving scene."""
        before = [tr if tr.lost_at is not None else replace(tr, lost_at=t) for tr in self._tracks if tr.seen >= 2] + self._ghosts
        proposals = None
        if proposed and self.proposer is not None:
            proposals, self._proposed_t = self.proposer.propose(gray), t
        scan = self.detector.scan(gray) if proposals is None else scan_proposed(self.detector, gray, proposals)
        self._tracks = [self._stamp(gray, _track(f, scan.hits), t) for f in scan.faces]
        self._last_full = t
        self._changes.account_all()
        if self._tracks:
            self._last_seen = t
        self._ghosts = []
        # The faces this scan lost, newest first, unless one found covers them or they are too old; and only
        # as many as keep the searched area under the frame's (more searching would cost more than a full scan).
        h, w = gray.shape[:2]
        budget = h * w - sum(r[2] * r[3] for r in (self._wide(f, w, h) for f in self._faces))
        for g in sorted(before, key=lambda g: -(g.lost_at or t)):
            near = self._faces + [o.face for o in self._ghosts]
            if t - (g.lost_at or t) >= self.s.idle_after_s or any(iou(g.face.box, o.box) >= 0.2 for o in near):
                continue
            _, _, rw, rh = self._wide(g.face, w, h)
            if rw * rh <= budget:
                budget -= rw * rh
                self._ghosts.append(g)
        return Detection(self._faces, "full")

    def detect(self, gray: np.ndarray, t: float) -> Detection:
        h, w = gray.shape[:2]
        if self.proposer is not None and not 0 <= t - self._proposed_t < IDLE_S:
            self.proposer.release()  # (a no-op unless loaded; also after a reset or a new source's clock)
        if self._changes.look(gray, self.s.still_threshold):
            return Detection(self._faces, "still")
        if self._last_seen is None:
            self._last_seen = t  # the first frame: nobody has been missed yet
        self._ghosts = [g for g in self._ghosts if g.lost_at is not None and t - g.lost_at < self.s.idle_after_s]
        if not self._changes.known or self.s.change_threshold <= 0:
            return self._full(gray, t)
        if not self._tracks and not self._ghosts:
            if t - self._last_seen >= self.s.idle_after_s:  # an empty room
                return self._full(gray, t) if t - self._last_full >= self.s.idle_scan_s else Detection([], "idle")
        elif t - self._last_full >= self.s.full_scan_s:
            return self._full(gray, t)

        changed = self._changes.changed(self.s.change_threshold)
        moving = changed.mean() > self.s.changed_share  # a cut or a moving camera: left to a full scan
        self._extra = []
        tracks: list[_Track] = []
        lost: list[_Track] = []
        for tr in self._tracks:
            new = self._follow(gray, tr, t)
            if new is None:
                lost.append(replace(tr, lost_at=t))
            elif all(iou(new.face.box, o.face.box) < 0.5 for o in tracks):
                tracks.append(new)
        ghosts: list[_Track] = []
        for g in self._ghosts:
            area = self._wide(g.face, w, h)
            rows, cols = cells(area)
            if moving or not changed[rows, cols].any() or t - g.searched < self.s.ghost_s:
                ghosts.append(g)  # nothing changed where it was (still not there), or looked at a moment ago
                continue
            new = self._stamp(gray, self._wide_search(gray, g.face), t)
            self._changes.account(area)
            if new is None:
                ghosts.append(replace(g, searched=t))
            elif all(iou(new.face.box, o.face.box) < 0.5 for o in tracks):
                tracks.append(new)
        for ex in self._extra:  # (the cascade also finds a second, smaller "face" in a face at times)
            if all(iou(ex.face.box, o.face.box) < 0.5 for o in tracks):
                tracks.append(self._stamp(gray, ex, t))
        self._extra = []
        if lost and t - self._last_full >= self.s.lost_rescan_s:
            self._tracks = tracks + lost  # (the full scan makes ghosts of the ones it does not find)
            return self._full(gray, t, proposed=True)  # it may have moved further than searched: look everywhere
        ghosts += [g for g in lost if g.seen >= 2]  # a face found once and then lost was a flicker
        for tr in tracks:
            self._changes.account(self._body(tr.face, w, h))
        changed = self._changes.changed(self.s.change_threshold)
        for g in ghosts:  # searched when it changes there, so not a newcomer's sign
            rows, cols = cells(self._wide(g.face, w, h))
            changed[rows, cols] = False
        if changed.any():
            parts = changed_parts(changed, w, h, self.detector.settings.min_face)
            if moving or sum(p[2] * p[3] for p in parts) > _MAX_SEARCHED * w * h:
                wait = self.s.rescan_s if tracks else self.s.empty_rescan_s
                if t - self._last_full >= wait:
                    self._tracks, self._ghosts = tracks, ghosts
                    return self._full(gray, t, proposed=True)  # a cut or a moving camera: look everywhere
            else:
                min_face = self.detector.settings.min_face
                for part in parts:
                    found = self.detector.search(gray, part, min_face, min(part[2], part[3]))
                    for f in found.faces:
                        if all(iou(f.box, o.face.box) < 0.3 for o in tracks):
                            tracks.append(self._stamp(gray, _track(f, found.hits), t))
                    self._changes.account(part)
        tracks.sort(key=lambda tr: tr.face.area, reverse=True)
        self._tracks, self._ghosts = tracks, [g for g in ghosts if all(iou(g.face.box, o.face.box) < 0.2 for o in tracks)]
        if tracks:
            self._last_seen = t
        return Detection(self._faces, "roi")
