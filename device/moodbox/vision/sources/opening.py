"""``camera.source`` -> the frame source it names."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from moodbox.vision.sources.base import IMAGE_SUFFIXES, FrameSource, SourceError
from moodbox.vision.sources.cameras import OpenCVCamera, Picamera2Camera, require_picamera2
from moodbox.vision.sources.files import ImageFolderSource, VideoFileSource
from moodbox.vision.sources.live import Camera, LiveSource


def open_source(
    source: str | os.PathLike[str],
    *,
    width: int = 640,
    height: int = 480,
    fps: float = 10.0,
    realtime: bool = True,
    folder_fps: float = 2.0,
    loop: bool = False,
    retry_s: float = 2.0,
    retry_max_s: float = 60.0,
    on_status: Callable[[str], None] | None = None,
    drop_late: bool = False,
) -> FrameSource:
    """The source named by ``camera.source``; raises :class:`SourceError` naming what is wrong."""
    source = os.fspath(source)

    def live(name: str, opener: Callable[[], Camera]) -> LiveSource:
        return LiveSource(name, opener, fps=fps, retry_s=retry_s, retry_max_s=retry_max_s, on_status=on_status)

    if source == "picamera2":
        require_picamera2()
        return live("picamera2", lambda: Picamera2Camera(width, height, fps))
    if re.fullmatch(r"\d+", source):
        index = int(source)
        return live(f"/dev/video{index}", lambda: OpenCVCamera(index, width, height))
    if re.match(r"^(rtsp|rtsps|http|https)://", source):
        return live(re.sub(r"//[^@/]*@", "//***@", source), lambda: OpenCVCamera(source, width, height))
    path = Path(source).expanduser()
    if path.is_dir():
        return ImageFolderSource(path, fps=folder_fps, realtime=realtime, loop=loop, on_status=on_status)
    if path.is_file():
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return ImageFolderSource(path, fps=folder_fps, realtime=realtime, loop=loop, on_status=on_status)
        return VideoFileSource(path, realtime=realtime, loop=loop, drop_late=drop_late)
    raise SourceError(
        f"camera.source {source!r}: no such file or folder (expected picamera2, a V4L2 index, a video file, "
        "a folder of images or an rtsp:// URL)"
    )
