"""The Pi camera driver against a fake ``picamera2`` module (the one part the tests may fake: there is no
Pi camera here). The fake copies what Picamera2 does on the failures owners meet: no camera detected,
the camera held by another program, and a camera object that stays acquired until it is closed."""

from __future__ import annotations

import logging
import sys
import threading
import types

import numpy as np
import pytest

from moodbox.vision.sources import open_source
from tests.util import scaled


class FakePicamera2:
    """Picamera2's calls that moodbox makes, with its failure modes. Class attributes steer a test."""

    cameras: list[dict] = [{"Model": "imx219", "Num": 0}]
    held_elsewhere = False  # another program holds the camera
    start_failures = 0  # how many start() calls fail before one works
    capture_failures = 0  # how many capture_array() calls fail
    instances: list[FakePicamera2] = []

    def __init__(self, camera_num: int = 0) -> None:
        # Picamera2 opens the camera in __init__ and, on any failure, logs and raises a bare RuntimeError
        # from inside its except block (so the real cause is only the exception's __context__)
        try:
            if camera_num >= len(self.cameras):
                raise IndexError("list index out of range")
            if self.held_elsewhere or any(not c.closed for c in FakePicamera2.instances):
                raise RuntimeError("Failed to acquire camera: Device or resource busy")
        except Exception:
            raise RuntimeError("Camera __init__ sequence did not complete.")  # noqa: B904 - as Picamera2 does
        self.closed = False
        self.started = False
        self.config: dict | None = None
        self.frames = 0
        FakePicamera2.instances.append(self)

    @staticmethod
    def global_camera_info() -> list[dict]:
        return list(FakePicamera2.cameras)

    def create_video_configuration(self, main: dict | None = None, **kw) -> dict:
        return {"main": dict(main or {}), **kw}

    def configure(self, config: dict) -> None:
        self.config = config

    def start(self) -> None:
        if FakePicamera2.start_failures > 0:
            FakePicamera2.start_failures -= 1
            raise RuntimeError("Failed to start camera: Input/output error")
        self.started = True

    def capture_array(self, name: str = "main") -> np.ndarray:
        assert self.started and not self.closed and self.config is not None
        if FakePicamera2.capture_failures > 0:
            FakePicamera2.capture_failures -= 1
            raise RuntimeError("Camera frontend has timed out!")
        w, h = self.config["main"]["size"]
        self.frames += 1
        if self.config["main"].get("format") == "YUV420":  # I420: Y (h rows), then U and V (h/2 rows)
            out = np.full((h * 3 // 2, w), 128, np.uint8)
            out[:h] = self.frames % 256
            return out
        return np.full((h, w, 3), self.frames % 256, np.uint8)

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def picam(monkeypatch):
    fake = types.ModuleType("picamera2")
    fake.Picamera2 = FakePicamera2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", fake)
    monkeypatch.setattr(FakePicamera2, "cameras", [{"Model": "imx219", "Num": 0}])
    monkeypatch.setattr(FakePicamera2, "held_elsewhere", False)
    monkeypatch.setattr(FakePicamera2, "start_failures", 0)
    monkeypatch.setattr(FakePicamera2, "capture_failures", 0)
    monkeypatch.setattr(FakePicamera2, "instances", [])
    return FakePicamera2


def _first_frames(src, n: int, timeout_s: float) -> list:
    got: list = []
    done = threading.Event()

    def consume():
        for f in src.frames(tick_s=0.1):
            if f is not None:
                got.append(f)
            if len(got) >= n or done.is_set():
                return

    th = threading.Thread(target=consume, daemon=True)
    th.start()
    th.join(timeout_s)
    done.set()
    src.close()
    th.join(2)
    return got


def test_picamera2_is_asked_for_camera_fps_in_yuv420_and_frames_are_handed_on_grey(picam):
    """Issue 26: Picamera2 ran its default 30 fps RGB888 while the box looks at camera.fps grey frames;
    now it is asked for camera.fps and YUV420, and only the Y plane (the grey picture) is handed on."""
    statuses: list[str] = []
    src = open_source("picamera2", width=320, height=240, fps=20, on_status=statuses.append)
    frames = _first_frames(src, 3, scaled(5))
    assert len(frames) == 3 and frames[0].image.shape == (240, 320) and frames[0].image.dtype == np.uint8
    assert frames[0].image.flags["C_CONTIGUOUS"]
    assert len({int(f.image[0, 0]) for f in frames}) == 3  # each frame's own Y plane, not its chroma (128)
    cam = picam.instances[0]
    assert cam.config["main"] == {"size": (320, 240), "format": "YUV420"}
    assert cam.config["controls"] == {"FrameRate": 20.0}
    assert statuses[-1] == "ok"
    assert cam.closed, "closing the source releases the camera"


def test_a_camera_that_fails_to_start_is_closed_so_the_retry_can_open_it(picam, caplog):
    """Picamera2 keeps the camera acquired until close(): a start() that failed must close it, or every
    later attempt reads 'Device or resource busy' and the box never sees again until restarted."""
    picam.start_failures = 1
    statuses: list[str] = []
    src = open_source("picamera2", width=64, height=48, fps=20, retry_s=0.05, retry_max_s=0.1, on_status=statuses.append)
    frames = _first_frames(src, 2, scaled(5))
    assert len(frames) == 2, (statuses, caplog.text)
    assert picam.instances[0].closed and not picam.instances[0].started
    assert "Failed to start camera: Input/output error" in caplog.text


def test_a_camera_that_stops_delivering_is_reopened(picam, caplog):
    picam.capture_failures = 1
    src = open_source("picamera2", width=64, height=48, fps=20, retry_s=0.05, retry_max_s=0.1)
    frames = _first_frames(src, 2, scaled(5))
    assert len(frames) == 2
    assert len(picam.instances) >= 2 and picam.instances[0].closed
    assert "Camera frontend has timed out!" in caplog.text


@pytest.mark.parametrize(
    ("setup", "says"),
    [
        (lambda p: setattr(p, "cameras", []), "no camera detected"),
        (lambda p: setattr(p, "held_elsewhere", True), "in use by another program"),
    ],
    ids=["no-camera", "busy"],
)
def test_an_unavailable_camera_says_why_not_just_that_init_failed(picam, caplog, setup, says):
    """Picamera2 says only 'Camera __init__ sequence did not complete.'; the owner needs the reason."""
    setup(picam)
    caplog.set_level(logging.INFO)
    statuses: list[str] = []
    src = open_source("picamera2", width=64, height=48, fps=20, retry_s=0.05, retry_max_s=0.1, on_status=statuses.append)
    assert _first_frames(src, 1, scaled(1.0)) == []
    assert statuses and says in statuses[-1], statuses
    warning = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning and says in warning[0], warning
    assert "Traceback" not in caplog.text
