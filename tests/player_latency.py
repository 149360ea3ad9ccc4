"""Latencies of the player's commands against a real mpd, as the daemon runs it (default poll_s).

Not a test (nothing here is asserted on timing): the figures quoted in docs/music.md come from
    .venv/bin/python -m tests.player_latency
The integration tests in test_player.py hold the same behaviour to its 1 s targets.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import mpd

from devtools.servers import Mpd, make_library, write_m3u
from moodbox.config import MusicConfig
from tests.steered import SteeredPlayer

GENRE_MOOD = {"pop": "happy", "ambient": "calm", "jazz": "neutral", "blues": "sad"}
MOOD_GENRE = {m: g for g, m in GENRE_MOOD.items()}


def wait(pred: Callable[[], object], timeout: float = 10.0) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return time.monotonic() - t0
        time.sleep(0.005)
    raise SystemExit(f"timed out after {timeout} s")


def cfg(port: int, **kw: object) -> MusicConfig:
    return MusicConfig.model_validate({"mpd": {"host": "127.0.0.1", "port": port}, "crossfade_s": 0, **kw})


def client(port: int) -> mpd.MPDClient:
    c = mpd.MPDClient()
    c.connect("127.0.0.1", port)
    return c


def playing(c: mpd.MPDClient, mood: str) -> bool:
    return bool(c.currentsong().get("file", "").startswith(MOOD_GENRE[mood] + "/") and c.status()["state"] == "play")


def measure(tmp: Path) -> None:
    tracks = [{"file": f"{g}/{g}{i}.ogg", "genre": g.title()} for g in GENRE_MOOD for i in range(4)]
    music, playlists = make_library(tmp / "lib", tracks, seconds=60)
    for g, m in GENRE_MOOD.items():
        write_m3u(playlists, f"mood_{m}", [t["file"] for t in tracks if t["file"].startswith(g)])
    with Mpd(tmp / "mpd", music, playlists) as server:
        c = client(server.port)
        # a skip refused by MPD (stopped, auto-DJ off), then a volume (issue 15 item 2)
        p = SteeredPlayer(cfg(server.port, auto_dj=False))
        p.start()
        wait(lambda: p.state().music == "STOPPED")
        lat = []
        for v in (31, 32, 33, 34, 35):
            p.skip()
            p.set_volume(v)
            lat.append(wait(lambda: c.status().get("volume") == str(v)))
        print(f"volume after a refused skip: max {max(lat) * 1000:.0f} ms over {len(lat)}")
        p.stop()

        # a mood choice: the chosen mood's track playing in MPD
        p = SteeredPlayer(cfg(server.port))
        p.set_emotion("happy")
        p.start()
        wait(lambda: p.state().mood == "happy" and p.state().music == "PLAYING")
        lat = []
        for mood in ["calm", "sad", "neutral", "happy"] * 3:
            p.set_override(mood)
            lat.append(wait(lambda: playing(c, mood)))
        print(
            f"mood choice -> its track playing: p50 {statistics.median(lat) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms over {len(lat)}"
        )

        off, on = [], []
        for _ in range(5):
            p.set_music(False)
            off.append(wait(lambda: c.status()["state"] == "pause"))
            p.set_music(True)
            on.append(wait(lambda: c.status()["state"] == "play"))
        print(f"music OFF -> paused: max {max(off) * 1000:.0f} ms; ON -> playing: max {max(on) * 1000:.0f} ms")

        # MPD restarted on its saved state (another mood's track) while the intended mood changed (issue 15 item 7)
        p.set_override(None)
        lat = []
        for emotion in ("sad", "neutral", "happy", "sad", "neutral"):
            wait(lambda: p.state().connected and p.state().music == "PLAYING" and p.state().mood is not None)
            server.stop()
            wait(lambda: not p.state().connected)
            p.set_emotion(emotion)
            server.start()
            t0 = time.monotonic()
            c = client(server.port)
            wait(lambda: playing(c, emotion))
            lat.append(time.monotonic() - t0)
        print(
            f"MPD restarted on another mood's track -> the intended mood's track: max {max(lat) * 1000:.0f} ms "
            f"over {len(lat)} (from mpd accepting connections with its database updated)"
        )
        p.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as d:
        measure(Path(d))
