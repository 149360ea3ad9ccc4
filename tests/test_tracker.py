"""FaceTracker: cheaper than a full Haar scan every frame, without finding anything else.

Real OpenCV cascade on synthetic frames made of scikit-image's astronaut face pasted on a grey room."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from moodbox.faces import FaceDetector, FaceTracker, TrackerSettings, iou, to_gray


@pytest.fixture(scope="module")
def face_patch(astronaut_png) -> np.ndarray:
    gray = to_gray(cv2.imread(str(astronaut_png)))
    [face] = FaceDetector().detect(gray)
    x, y, w, h = face.box
    m = w // 2
    return cv2.resize(gray[y - m : y + h + m, x - m : x + w + m], (240, 240), interpolation=cv2.INTER_CUBIC)


def frame(face_patch: np.ndarray, *at: tuple[int, int], noise_at: tuple[int, int] | None = None) -> np.ndarray:
    img = np.full((480, 640), 110, np.uint8)
    for x, y in at:
        img[y : y + face_patch.shape[0], x : x + face_patch.shape[1]] = face_patch
    if noise_at is not None:  # something moving where no face is: a hand, a cat
        x, y = noise_at
        img[y : y + 40, x : x + 40] = np.random.default_rng(x + y).integers(0, 255, (40, 40), dtype=np.uint8)
    return img


class CountingDetector(FaceDetector):
    def __init__(self) -> None:
        super().__init__()
        self.full_scans = 0

    def detect(self, gray):
        self.full_scans += 1
        return super().detect(gray)


def test_roi_search_returns_the_full_scan_box(face_patch):
    """A face followed between full scans gets the box a full scan would give it, so its crop (and its
    emotion) does not depend on which kind of frame it was found in."""
    det = CountingDetector()
    tracker = FaceTracker(det, TrackerSettings(rescan_s=10, full_scan_s=100))
    assert tracker.detect(frame(face_patch, (200, 120)), 0.0).kind == "full"
    for i, (x, y) in enumerate([(203, 121), (207, 124), (211, 122), (214, 118)], start=1):
        img = frame(face_patch, (x, y))
        got = tracker.detect(img, i * 0.1)
        assert got.kind == "roi"
        ref = FaceDetector().detect(img)
        assert [f.box for f in got.faces] == [f.box for f in ref]
    assert det.full_scans == 1


def test_newcomers_are_looked_for_only_when_something_changed_elsewhere(face_patch):
    det = CountingDetector()
    tracker = FaceTracker(det, TrackerSettings(rescan_s=0.5, full_scan_s=100))
    tracker.detect(frame(face_patch, (20, 120)), 0.0)
    assert det.full_scans == 1
    # One listener moving a little for two seconds: the rest of the room is unchanged, no rescans.
    for i in range(1, 21):
        got = tracker.detect(frame(face_patch, (20 + i % 3, 120)), i * 0.1)
        assert got.kind == "roi" and len(got.faces) == 1
    assert det.full_scans == 1
    # A second listener walks in: found by the next rescan, within rescan_s.
    found_at = None
    for i in range(21, 30):
        got = tracker.detect(frame(face_patch, (20 + i % 3, 120), (380, 120)), i * 0.1)
        if len(got.faces) == 2:
            found_at = i * 0.1
            break
    assert found_at is not None and found_at - 2.1 <= 0.5 + 1e-9
    assert det.full_scans == 2


def test_change_elsewhere_triggers_the_rescan_and_full_scan_s_bounds_the_wait(face_patch):
    det = CountingDetector()
    tracker = FaceTracker(det, TrackerSettings(rescan_s=0.5, full_scan_s=2.0))
    tracker.detect(frame(face_patch, (20, 120)), 0.0)
    tracker.detect(frame(face_patch, (21, 120), noise_at=(500, 20)), 0.6)  # something moved far away
    assert det.full_scans == 2
    for i in range(7, 19):  # the thing stays put and nothing else changes outside the face: no scan
        tracker.detect(frame(face_patch, (20 + i % 2, 120), noise_at=(500, 20)), i * 0.1)
    assert det.full_scans == 2
    tracker.detect(frame(face_patch, (21, 120), noise_at=(500, 20)), 2.7)  # 2.1 s after the last full scan
    assert det.full_scans == 3


def test_a_lost_face_triggers_a_full_scan_at_once(face_patch):
    det = CountingDetector()
    tracker = FaceTracker(det, TrackerSettings(rescan_s=10, full_scan_s=100))
    tracker.detect(frame(face_patch, (20, 120)), 0.0)
    got = tracker.detect(frame(face_patch, (380, 200)), 0.1)  # jumped across the room
    assert got.kind == "full" and len(got.faces) == 1 and got.faces[0].box[0] > 300
    assert det.full_scans == 2


def test_still_frames_are_not_analysed_but_a_small_shift_is(face_patch):
    det = CountingDetector()
    tracker = FaceTracker(det)
    img = frame(face_patch, (200, 120))
    tracker.detect(img, 0.0)
    noisy = np.clip(img.astype(np.int16) + np.random.default_rng(1).integers(-3, 4, img.shape), 0, 255).astype(np.uint8)
    assert tracker.detect(noisy, 0.1).kind == "still"  # sensor noise is not movement
    shifted = tracker.detect(frame(face_patch, (202, 120)), 0.2)
    assert shifted.kind == "roi"
    ref = FaceDetector().detect(frame(face_patch, (202, 120)))
    assert iou(shifted.faces[0].box, ref[0].box) > 0.95


def test_an_empty_room_is_scanned_only_every_idle_scan_s(face_patch):
    det = CountingDetector()
    tracker = FaceTracker(det, TrackerSettings(idle_after_s=1.0, idle_scan_s=0.5, still_threshold=0))
    empty = np.full((480, 640), 110, np.uint8)
    for i in range(40):  # 4 s at 10 frames/s
        tracker.detect(empty, i * 0.1)
    # every frame for the first second (someone may just have left), then one scan per 0.5 s
    assert 10 <= det.full_scans <= 10 + 7


def test_region_search_makes_the_full_scans_raw_hits_on_real_video(hamilton_clip):
    """On the sample film's small, textured faces (55-120 px: the case a cropped search got a pixel or
    two wrong, which flipped near-tied emotions), the region search's raw hits are exactly the full
    scan's in that region, at every scale, and its grouped box is the full scan's box."""
    det = FaceDetector()
    cap = cv2.VideoCapture(str(hamilton_clip))
    checked = same_box = 0
    for i in range(0, 240):
        ok, bgr = cap.read()
        assert ok
        if i % 8:
            continue
        gray = to_gray(bgr)
        for face in det.detect(gray):
            x, y, w, h = face.box
            lo, hi = max(40, int(w * 0.65)), int(w * 1.5) + 1
            m = w // 2
            rx, ry = max(0, x - m), max(0, y - m)
            region = (rx, ry, min(gray.shape[1], x + w + m) - rx, min(gray.shape[0], y + h + m) - ry)
            raw = det._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=0, minSize=(lo, lo), maxSize=(hi, hi))
            _, _, rw, rh = region
            inside = sorted(
                tuple(int(v) for v in r) for r in raw
                if r[0] >= rx and r[1] >= ry and r[0] + r[2] <= rx + rw and r[1] + r[3] <= ry + rh
            )
            assert sorted(det.raw_hits(gray, region, lo, hi)) == inside, f"frame {i}, face {face.box}"
            checked += 1
            same_box += any(f.box == face.box for f in det.detect_region(gray, region, lo, hi))
    cap.release()
    assert checked >= 20
    assert same_box >= 0.9 * checked  # the rest: a face whose raw hits reach outside the size range


def upside_down(face_patch: np.ndarray) -> np.ndarray:
    """The same listener, but a face Haar cannot see (as a turned or blurred head): same pixels, moved."""
    return np.ascontiguousarray(face_patch[::-1])


def test_a_face_lost_for_a_few_frames_is_found_again_where_it_was_without_full_scans(face_patch):
    det = CountingDetector()
    tracker = FaceTracker(det, TrackerSettings(rescan_s=0.5, full_scan_s=100, idle_after_s=5.0))
    tracker.detect(frame(face_patch, (200, 120)), 0.0)
    assert det.full_scans == 1
    hidden = upside_down(face_patch)
    got = tracker.detect(frame(hidden, (200, 120)), 0.1)  # lost: one full scan looks everywhere
    assert got.kind == "full" and got.faces == [] and det.full_scans == 2
    for i in range(2, 12):  # a second of a face Haar cannot see, nothing changing elsewhere
        got = tracker.detect(frame(hidden if i % 2 else hidden[:, ::-1], (200, 120)), i * 0.1)
        assert got.faces == [] or got.kind == "roi"
    assert det.full_scans == 2
    img = frame(face_patch, (201, 121))
    got = tracker.detect(img, 1.3)  # back where it was: found by the search around the lost face
    assert got.kind == "roi" and [f.box for f in got.faces] == [f.box for f in FaceDetector().detect(img)]
    assert det.full_scans == 2


def test_a_second_face_that_flickers_is_followed_between_rescans(face_patch):
    det = CountingDetector()
    tracker = FaceTracker(det, TrackerSettings(rescan_s=10, full_scan_s=100))
    assert len(tracker.detect(frame(face_patch, (20, 120), (380, 120)), 0.0).faces) == 2
    got = tracker.detect(frame(face_patch, (20, 120)), 0.1)  # the second one lost (the room behind is grey)
    assert got.kind == "full" and len(got.faces) == 1 and det.full_scans == 2
    got = tracker.detect(frame(face_patch, (21, 120), (381, 121)), 0.2)  # and back, long before a rescan
    assert got.kind == "roi" and len(got.faces) == 2 and det.full_scans == 2


def test_a_ghost_is_forgotten_after_idle_after_s(face_patch):
    det = CountingDetector()
    tracker = FaceTracker(det, TrackerSettings(rescan_s=0.5, full_scan_s=100, idle_after_s=1.0, idle_scan_s=0.5, still_threshold=0))
    tracker.detect(frame(face_patch, (200, 120)), 0.0)
    hidden = upside_down(face_patch)
    for i in range(1, 10):  # within idle_after_s: the lost face is searched for, no full scans
        tracker.detect(frame(hidden, (200, 120)), i * 0.1)
    assert det.full_scans == 2
    for i in range(10, 31):  # after it: an empty room, scanned every idle_scan_s
        tracker.detect(frame(hidden, (200, 120)), i * 0.1)
    assert 2 + 3 <= det.full_scans <= 2 + 6


def test_ghosts_are_kept_only_while_searching_them_is_cheaper_than_a_full_scan(face_patch):
    """Searching around a lost face costs about what a full scan costs on that area: ghosts (newest first)
    are kept only while the areas searched every frame add up to less than the frame."""
    det = CountingDetector()
    tracker = FaceTracker(det, TrackerSettings(rescan_s=10, full_scan_s=100, roi_margin=1.0))
    at = [(0, 0), (200, 0), (400, 0), (0, 240), (200, 240), (400, 240)]
    small = cv2.resize(face_patch, (200, 200), interpolation=cv2.INTER_AREA)
    assert len(tracker.detect(frame(small, *at), 0.0).faces) == 6
    got = tracker.detect(np.full((480, 640), 110, np.uint8), 0.1)  # everybody gone at once
    assert got.kind == "full" and got.faces == []
    ghosts = tracker._ghosts
    assert 0 < len(ghosts) < 6
    assert sum(r[2] * r[3] for r in (tracker._region(g, 640, 480) for g, _ in ghosts)) <= 640 * 480
