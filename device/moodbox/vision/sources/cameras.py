"""The camera drivers behind :class:`~moodbox.vision.sources.live.LiveSource`: OpenCV (V4L2, RTSP) and Picamera2."""

from __future__ import annotations

import contextlib
from typing import Any

import cv2
import numpy as np

from moodbox.vision.sources.base import SourceError
from moodbox.vision.sources.files import open_video


class OpenCVCamera:
    def __init__(self, target: int | str, width: int, height: int) -> None:
        self._cap = cv2.VideoCapture(target, cv2.CAP_V4L2) if isinstance(target, int) else open_video(target)
        if not self._cap.isOpened():
            self._cap.release()
            raise RuntimeError(f"OpenCV cannot open {target!r}")
        if isinstance(target, int):
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)

    def read(self) -> np.ndarray | None:
        ok, img = self._cap.read()
        return img if ok else None

    def release(self) -> None:
        self._cap.release()


class Picamera2Camera:
    """The Pi camera, asked for ``fps`` frames a second in YUV420, of which only the grey (Y) plane is
    handed on: the box works in grey, and Picamera2's default 30 fps RGB888 copied about 5x the bytes."""

    def __init__(self, width: int, height: int, fps: float = 10.0) -> None:
        from picamera2 import Picamera2  # imported here: only the Pi has it

        listed = getattr(Picamera2, "global_camera_info", None)  # (every Picamera2 since 0.3 has it)
        if listed is not None and not listed():
            raise RuntimeError(
                "no camera detected: check the ribbon cable (both ends, contacts the right way round) and that "
                "'rpicam-hello --list-cameras' lists it"
            )
        try:
            self._cam: Any = Picamera2()
        except RuntimeError as exc:
            raise RuntimeError(_why_not_opened(exc)) from None
        try:
            config = self._cam.create_video_configuration(
                main={"size": (width, height), "format": "YUV420"}, controls={"FrameRate": float(fps)}
            )
            self._cam.configure(config)
            self._size = tuple(config["main"]["size"])  # (Picamera2 may align the size it was asked for)
            self._cam.start()
        except BaseException:
            # Picamera2 holds the camera until close(): without it every retry would find it busy
            with contextlib.suppress(Exception):  # (the first failure is the one to report)
                self._cam.close()
            raise

    def read(self) -> np.ndarray | None:
        # YUV420 arrives as one (height * 3/2, stride) array: the Y plane is its first ``height`` rows
        w, h = self._size
        return np.ascontiguousarray(self._cam.capture_array("main")[:h, :w])

    def release(self) -> None:
        try:
            self._cam.stop()
        finally:
            self._cam.close()


def _why_not_opened(exc: BaseException) -> str:
    """Picamera2 says only "Camera __init__ sequence did not complete."; the reason is the exception it
    was raised while handling."""
    causes: list[str] = []
    inner = exc.__cause__ or exc.__context__
    while inner is not None and len(causes) < 5:
        causes.append(str(inner) or type(inner).__name__)
        inner = inner.__cause__ or inner.__context__
    if any("busy" in c.lower() for c in causes):
        return f"the camera is in use by another program (another moodbox, rpicam-*, motion?): {causes[0]}"
    return f"{exc} ({'; '.join(causes)})" if causes else str(exc)


def require_picamera2() -> None:
    try:
        import picamera2  # noqa: F401
    except ImportError:
        raise SourceError(
            "camera.source is 'picamera2' but the picamera2 module is not installed. On Raspberry Pi OS: "
            "sudo apt install -y --no-install-recommends python3-picamera2, and create the virtual environment "
            'with --system-site-packages. Elsewhere, set camera.source to a V4L2 index ("0"), a video file '
            "or a folder of images."
        ) from None
