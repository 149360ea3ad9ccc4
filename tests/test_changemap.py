"""The tracker's change map: which parts of a frame changed since they were last looked at."""

from __future__ import annotations

import numpy as np

from moodbox.vision.changemap import BLOCK, ChangeMap, changed_parts


def _wall(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(90, 130, (240, 320)).astype(np.uint8)


def test_a_repeated_frame_is_still_and_a_small_shift_is_not():
    m = ChangeMap()
    wall = _wall()
    assert m.look(wall, still_threshold=2.0) is False  # nothing to compare the first frame with
    assert m.look(wall.copy(), still_threshold=2.0) is True
    moved = wall.copy()
    moved[100:140, 100:140] = np.roll(wall[100:140, 100:140], 2, axis=1) // 2  # a small patch, much darker
    assert m.look(moved, still_threshold=2.0) is False
    assert m.look(wall, still_threshold=0.0) is False, "threshold 0 turns the still check off"


def test_change_counts_until_it_is_accounted_for():
    m = ChangeMap()
    wall = _wall()
    m.look(wall, 2.0)
    assert not m.known
    m.account_all()
    assert m.known
    lit = wall.copy()
    lit[16:48, 200:240] = 250  # someone appears there
    m.look(lit, 2.0)
    changed = m.changed(4.0)
    rows, cols = np.nonzero(changed)
    assert (rows.min(), rows.max() + 1) == (16 // BLOCK, 48 // BLOCK) and (cols.min(), cols.max() + 1) == (
        200 // BLOCK,
        240 // BLOCK,
    )
    m.account((200, 16, 40, 32))  # searched there
    assert not m.changed(4.0).any()
    m.look(wall, 2.0)  # they leave: a change again, against what was accounted for
    assert m.changed(4.0).any()


def test_changed_patches_are_grown_merged_and_kept_in_the_frame():
    changed = np.zeros((30, 40), bool)  # a 320x240 frame in 8x8 blocks
    changed[2, 2] = changed[2, 4] = True  # two nearby patches: their grown boxes overlap, one search
    changed[25, 36] = True  # one far away, at the corner
    parts = changed_parts(changed, 320, 240, min_face=40)
    assert len(parts) == 2
    near, far = sorted(parts)
    assert near == (0, 0, 80, 64)  # blocks 2..4 (16..40 px), grown by 40 px, clipped at 0
    x, y, w, h = far
    assert (x, y) == (248, 160) and x + w == 320 and y + h == 240  # grown by 40 px, clipped at the edge
