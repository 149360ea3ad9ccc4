"""Small helpers shared by the integration tests."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import Any


@functools.cache
def time_factor() -> float:
    """How many times slower than a developer's x86 machine this one is (at least 1): time limits in tests
    are multiplied by it, so a Pi or an emulated arm64 chroot runs the same checks without failing on the
    clock alone. ``MOODBOX_TEST_TIME_FACTOR`` sets it; otherwise a short fixed workload is timed
    (about 17 ms on a 2-core x86 developer machine, so that counts as 1; pure Python, as the daemon's
    control paths are)."""
    env = os.environ.get("MOODBOX_TEST_TIME_FACTOR")
    if env:
        return max(1.0, float(env))
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        total = 0
        for i in range(200_000):
            total += i % 7
        best = min(best, time.perf_counter() - t0)
    return min(30.0, max(1.0, best / 0.025))


def require_keras() -> Any:
    """Keras (from the export extra's TensorFlow), or skip saying why it is missing: TensorFlow has wheels
    for x86-64 with Python 3.10-3.13 only, so elsewhere the extra installs without it (scripts/setup)."""
    import platform
    import sys

    import pytest

    if platform.machine() != "x86_64" or sys.version_info >= (3, 14):
        reason = (
            f"TensorFlow has no wheel for {platform.machine()} with Python {sys.version_info.major}."
            f"{sys.version_info.minor}: the model-export extra is installed without it here"
        )
    else:
        reason = "the export extra (TensorFlow) is not installed: scripts/setup --all"
    return pytest.importorskip("keras", reason=reason)


def scaled(seconds: float) -> float:
    """A time limit, scaled for this machine's speed (see :func:`time_factor`)."""
    return seconds * time_factor()


def wait_for(pred: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Poll ``pred`` until it returns something truthy (returned), or fail saying what did not happen."""
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.03)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def noise_faces(root, per_class: int, seed: int = 0):
    """A tiny FER2013-layout folder (``train/`` and ``val/``, one folder per emotion) of random 48x48 faces,
    for exercising model_export's training code without the real data set."""
    import cv2
    import numpy as np

    from model_export.data import LABELS

    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        for name in LABELS:
            (root / split / name).mkdir(parents=True)
            for k in range(per_class):
                cv2.imwrite(str(root / split / name / f"{k}.png"), rng.integers(0, 256, (48, 48), dtype=np.uint8))
    return root
