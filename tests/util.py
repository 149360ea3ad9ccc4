"""Small helpers shared by the integration tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(pred: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Poll ``pred`` until it returns something truthy (returned), or fail saying what did not happen."""
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
