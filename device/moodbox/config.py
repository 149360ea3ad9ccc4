"""Typed configuration (config/moodbox.yaml documents every key): pydantic models with a description on every field.

The descriptions are the documentation: ``config/moodbox.yaml`` is generated from them
(:mod:`moodbox.configdoc`), and a test keeps the two equal.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from moodbox.configbase import EMOTIONS, _check_host, _Section
from moodbox.configgroup import GroupConfig
from moodbox.configmusic import DEFAULT_QUERIES, MOODS, MPD_TAGS, MpdConfig, MusicConfig, PreferencesConfig

__all__ = [
    "DEFAULT_QUERIES",
    "EMOTIONS",
    "MOODS",
    "MPD_TAGS",
    "CameraConfig",
    "Config",
    "DetectionConfig",
    "LoggingConfig",
    "ModelConfig",
    "MpdConfig",
    "MqttConfig",
    "MusicConfig",
    "PreferencesConfig",
    "SmoothingConfig",
    "TlsConfig",
]


class CameraConfig(_Section):
    source: str = Field(
        "picamera2",
        description='Where frames come from: "picamera2" (the Pi camera), a V4L2 device index such as "0", '
        "a video file, a folder of images, or an rtsp:// URL",
    )
    width: int = Field(640, gt=0, le=4096, description="Frame width asked of the camera, in pixels")
    height: int = Field(480, gt=0, le=4096, description="Frame height asked of the camera, in pixels")
    fps: float = Field(
        10.0, gt=0, le=120, description="Frames processed per second; the camera may deliver more, the newest is kept"
    )
    realtime: bool = Field(
        True,
        description="Files only: pace a video or image folder at its own frame rate; false processes it as fast "
        "as possible (timestamps still come from the file)",
    )
    folder_fps: float = Field(2.0, gt=0, le=120, description="Image folders only: the frame rate the images are replayed at")
    loop: bool = Field(False, description="Files only: start again from the beginning when the file ends")
    retry_s: float = Field(
        2.0, gt=0, le=3600, description="First wait before reopening a camera that failed; doubles up to retry_max_s"
    )
    retry_max_s: float = Field(60.0, gt=0, le=3600, description="Longest wait between attempts to reopen a failed camera")

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        if not v.strip():
            raise ValueError('must name a source: "picamera2", a V4L2 index, a file, a folder or an URL (not empty)')
        return v


class DetectionConfig(_Section):
    scale_factor: float = Field(
        1.1, gt=1.0, le=2.0, description="Haar cascade scale step between detection sizes (smaller: slower, finds more)"
    )
    min_neighbors: int = Field(
        5, ge=1, le=50, description="Haar cascade neighbours a detection needs (larger: fewer false faces)"
    )
    min_face: int = Field(40, ge=12, le=2000, description="Smallest face side to look for, in frame pixels")
    detect_width: int = Field(
        0, ge=0, le=4096, description="Frames wider than this are shrunk to it before detection; 0 detects at full size"
    )
    equalize: bool = Field(
        False, description="Equalise the histogram before detection (helps in dim light, adds false faces in bright scenes)"
    )
    max_faces: int = Field(4, ge=1, le=32, description="Most faces classified per frame, largest first")
    threads: int = Field(
        1,
        ge=1,
        le=8,
        description="OpenCV threads for detection and image work (more make a full scan sooner but busy-wait between frames: an empty room costs twice the CPU with two)",
    )
    tracking: bool = Field(
        True,
        description="Search near the faces just found instead of scanning every frame whole (false: a full scan every frame)",
    )
    proposals: bool = Field(
        True,
        description="When the whole picture changes (a cut, a moving camera) or a face is lost, look with the Haar cascade only where a small face-detection network (MediaPipe's, shipped) proposes faces, not over the whole frame: a sixth of the cost; full scans still run every full_scan_s and in an empty room (false: a full scan)",
    )
    rescan_s: float = Field(
        0.5,
        ge=0,
        le=60,
        description="While faces are tracked, a full scan because much of the picture changed (a cut, a moving camera) runs at most this often; smaller changes outside a tracked person are searched where they happened",
    )
    change_threshold: float = Field(
        4.0,
        ge=0,
        le=255,
        description="Change of an 8x8-pixel block's mean grey level that counts as the picture changing (0: rescan every rescan_s regardless)",
    )
    full_scan_s: float = Field(
        5.0, ge=0, le=600, description="While faces are tracked, scan the whole frame at least this often whatever changed"
    )
    idle_after_s: float = Field(
        5.0,
        ge=0,
        le=3600,
        description="A lost face is searched for where it was for this long, and nobody seen for this long counts as an empty room ...",
    )
    idle_scan_s: float = Field(0.5, ge=0, le=60, description="... which is scanned only this often")
    still_threshold: float = Field(
        2.0,
        ge=0,
        le=255,
        description="A frame in which no 8x8-pixel block's mean grey level changed by more than this counts as unchanged and is not analysed again (0: always analyse)",
    )


class ModelConfig(_Section):
    path: Path | None = Field(
        None, description="An int8 .tflite emotion model with its .json beside it; null uses the shipped model"
    )
    threads: int = Field(1, ge=1, le=8, description="Interpreter threads (one leaves the other cores to MPD and the system)")


class SmoothingConfig(_Section):
    window_s: float = Field(3.0, gt=0, le=600, description="Seconds of per-frame emotion scores averaged together")
    min_confidence: float = Field(0.35, ge=0, le=1, description="A frame's face whose top score is below this is ignored")
    margin: float = Field(
        0.1, ge=0, le=1, description="A new emotion must lead the current one by this much of the averaged score to take over"
    )
    dwell_s: float = Field(
        2.0, ge=0, le=600, description="Seconds a new emotion must keep the lead before it becomes the stable emotion"
    )
    no_face_s: float = Field(
        10.0, gt=0, le=3600, description='Seconds without a face before the stable emotion becomes "no face" (null)'
    )
    min_frames: int = Field(3, ge=1, le=1000, description="Faces needed in the window before any emotion is reported")
    faces: Literal["room", "largest"] = Field(
        "room",
        description="room: every face in view (up to detection.max_faces) counts, weighted by its size and confidence; largest: the largest face alone",
    )


class TlsConfig(_Section):
    enabled: bool = Field(False, description="Connect to the broker over TLS")
    ca_file: Path | None = Field(None, description="CA certificate file; null uses the system's CAs")
    cert_file: Path | None = Field(None, description="Client certificate (for brokers that require one)")
    key_file: Path | None = Field(None, description="Client certificate's private key")
    insecure: bool = Field(False, description="Skip the broker host name check (testing only)")


class MqttConfig(_Section):
    enabled: bool = Field(True, description="Publish state and take commands over MQTT")
    host: str = Field("localhost", description="MQTT broker host name or address")
    port: int = Field(1883, ge=1, le=65535, description="MQTT broker port (8883 is usual with TLS)")
    username: str | None = Field(None, description="Broker user name")
    password: str | None = Field(
        None, description="Broker password; better set MOODBOX_MQTT_PASSWORD or a systemd credential named mqtt_password"
    )
    tls: TlsConfig = Field(default_factory=TlsConfig, description="TLS settings")
    device_id: str = Field(
        "moodbox", description="This box's id in topics and in Home Assistant: lower-case letters, digits, _ and -"
    )
    base_topic: str = Field("moodbox", description="Topics live under <base_topic>/<device_id>/")
    discovery_prefix: str = Field("homeassistant", description="Home Assistant's MQTT discovery prefix")
    state_interval_s: float = Field(30.0, gt=0, le=3600, description="The state is re-published at least this often")
    state_min_interval_s: float = Field(
        1.0, ge=0, le=3600, description="The state is never published more often than this (changes in between are merged)"
    )
    reconnect_max_s: float = Field(
        2.0,
        ge=1,
        le=300,
        description="Longest wait between attempts to reach a lost broker (a refused password or a rejected certificate waits longer: 2 s doubling to 5 min)",
    )
    command_interval_s: float = Field(
        0.25,
        ge=0,
        le=60,
        description="At most one command per topic this often; one that comes sooner waits, the latest value winning (a flood cannot thrash MPD)",
    )
    rediscover_min_s: float = Field(
        5.0, ge=0, le=3600, description="Discovery is re-published when Home Assistant comes online, but at most this often"
    )
    diagnostics_interval_s: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="fps and inference time in the state change at most this often (each change is a row in Home Assistant's recorder)",
    )
    confidence_step: float = Field(
        0.1,
        ge=0.01,
        le=1,
        description="The published confidence is rounded to this step and changes only when the measured one moves a full step away",
    )
    confidence_interval_s: float = Field(
        10.0, ge=0, le=3600, description="The published confidence changes at most this often while the emotion stays the same"
    )

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        return _check_host(v)

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9_-]{1,64}", v):
            raise ValueError("must be 1-64 lower-case letters, digits, _ and - only")
        return v

    @field_validator("base_topic", "discovery_prefix")
    @classmethod
    def _topic(cls, v: str) -> str:
        """A topic prefix: levels of printable text, no wildcards, no empty level (``a//b``), no ``$``
        start (reserved for the broker)."""
        if not v or len(v) > 128 or not v.isprintable() or any(c in v for c in "#+") or v.startswith("$"):
            raise ValueError("must be 1-128 printable characters without the wildcards + and # or a leading $")
        if "" in v.split("/"):
            raise ValueError("must not start or end with / or hold an empty level (//)")
        return v


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level")


class Config(_Section):
    camera: CameraConfig = Field(default_factory=CameraConfig, description="The frame source")
    detection: DetectionConfig = Field(default_factory=DetectionConfig, description="Haar face detection")
    model: ModelConfig = Field(default_factory=ModelConfig, description="The emotion model")
    smoothing: SmoothingConfig = Field(default_factory=SmoothingConfig, description="Per-frame emotions -> one stable emotion")
    music: MusicConfig = Field(default_factory=MusicConfig, description="Music played through MPD")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="Home Assistant over MQTT")
    group: GroupConfig = Field(default_factory=GroupConfig, description="Several boxes in one house: the house mood")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Logging")

    @model_validator(mode="after")
    def _group_hears_quiet_rooms(self) -> Config:
        """A quiet box re-sends its state only every mqtt.state_interval_s: a leader's stale_s must be longer,
        or a healthy, quiet room would keep dropping out of the house mood."""
        if self.group.leads() and self.group.stale_s <= self.mqtt.state_interval_s:
            raise ValueError(
                f"group.stale_s ({self.group.stale_s:g}) must be longer than mqtt.state_interval_s ({self.mqtt.state_interval_s:g})"
            )
        return self
