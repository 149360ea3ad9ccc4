"""A moodbox daemon process with its own real mpd and mosquitto, for the daemon and soak tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import mpd
import pytest
import yaml

from devtools.servers import Mosquitto, Mpd, make_library, write_m3u

T = "moodbox/boxtest"
TRACKS = [
    {"file": f"{g.lower()}/{g.lower()}{i}.ogg", "artist": f"{g} Band", "title": f"{g} {i}", "genre": g}
    for g in ("Pop", "Jazz", "Ambient", "Blues")
    for i in range(1, 3)
]


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    music, playlists = make_library(tmp_path_factory.mktemp("lib"), TRACKS, seconds=3.0)
    write_m3u(playlists, "mood_neutral", [t["file"] for t in TRACKS if t["genre"] == "Jazz"])
    write_m3u(playlists, "mood_happy", [t["file"] for t in TRACKS if t["genre"] == "Pop"])
    return music, playlists


@pytest.fixture(scope="module")
def faces_folder(tmp_path_factory, astronaut_png):
    folder = tmp_path_factory.mktemp("faces")
    img = cv2.imread(str(astronaut_png))
    for i in range(20):
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), img)
    return folder


class Box:
    """A moodbox daemon process with its own mpd and mosquitto."""

    def __init__(self, tmp: Path, library, source: Path, camera: dict | None = None, env: dict | None = None) -> None:
        music, playlists = library
        self.mpd = Mpd(tmp / "mpd", music, playlists)
        self.broker = Mosquitto(tmp / "mq")
        self.mpd.start()
        self.broker.start()
        self.state_dir = tmp / "state"
        cfg = {
            "camera": {"source": str(source), "realtime": True, "loop": True, "folder_fps": 10, "retry_s": 0.5, **(camera or {})},
            "music": {"mpd": {"host": "127.0.0.1", "port": self.mpd.port}, "state_dir": str(self.state_dir), "crossfade_s": 0},
            "mqtt": {"host": "127.0.0.1", "port": self.broker.port, "device_id": "boxtest", "state_min_interval_s": 0.2},
        }
        self.cfg_path = tmp / "moodbox.yaml"
        self.cfg_path.write_text(yaml.safe_dump(cfg))
        self.log = tmp / "daemon.log"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moodbox", "run", "--config", str(self.cfg_path)],
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=self.env,
            )

    def mpd_client(self) -> mpd.MPDClient:
        c = mpd.MPDClient()
        c.connect("127.0.0.1", self.mpd.port)
        return c

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.broker.stop()
        self.mpd.stop()


@pytest.fixture
def box_factory(tmp_path, library):
    boxes: list[Box] = []

    def make(source: Path, **kw) -> Box:
        b = Box(tmp_path / f"box{len(boxes)}", library, source, **kw)
        boxes.append(b)
        return b

    yield make
    for b in boxes:
        b.close()
