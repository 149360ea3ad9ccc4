"""Frame sources: the Pi camera (Picamera2), OpenCV devices and streams, video files and image folders.

Every frame carries a monotonic timestamp in seconds. For files it comes from the file itself (the video
position, or the image's index over ``folder_fps``), so replaying a file faster than real time behaves
exactly as the live camera would. Live sources keep only the newest frame and reopen a failed camera with
backoff instead of raising; an image folder that empties or vanishes waits for images without spinning.
"""

from moodbox.vision.sources.base import IMAGE_SUFFIXES, Frame, FrameSource, SourceError
from moodbox.vision.sources.files import ImageFolderSource, VideoFileSource
from moodbox.vision.sources.live import Camera, LiveSource
from moodbox.vision.sources.opening import open_source

__all__ = [
    "IMAGE_SUFFIXES",
    "Camera",
    "Frame",
    "FrameSource",
    "ImageFolderSource",
    "LiveSource",
    "SourceError",
    "VideoFileSource",
    "open_source",
]
