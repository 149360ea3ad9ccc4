from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from moodbox.vision.sources import ImageFolderSource, LiveSource, SourceError, VideoFileSource, open_source
from tests.util import scaled


def test_video_file_timestamps_come_from_the_file(hamilton_clip):
    src = open_source(str(hamilton_clip), realtime=False)
    assert isinstance(src, VideoFileSource)
    ts = [f.t for f in src.frames()]
    assert len(ts) > 250
    assert ts[0] == 0.0 and all(b > a for a, b in zip(ts, ts[1:]))
    assert ts[-1] == pytest.approx(9.1, abs=0.3)  # 9.2 s at 29.97 fps


def test_a_video_is_decoded_on_one_thread(hamilton_clip):
    """FFmpeg's default, a decoding thread per core, held 3 MB more and two more threads (on 2 cores)
    for no gain at the box's frame rate: one thread, as the rest of the box."""
    import os

    before = len(os.listdir("/proc/self/task"))
    frames = open_source(str(hamilton_clip), realtime=False).frames()
    for _ in range(5):
        next(frames)
    during = len(os.listdir("/proc/self/task"))
    frames.close()
    assert during == before


def test_realtime_paces_files(tmp_path):
    for i in range(4):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.zeros((20, 20, 3), np.uint8))
    t0 = time.monotonic()
    frames = list(ImageFolderSource(tmp_path, fps=10, realtime=True).frames())
    assert len(frames) == 4 and time.monotonic() - t0 >= 0.28
    assert [f.t for f in frames] == pytest.approx([0.0, 0.1, 0.2, 0.3])


def test_folder_skips_unreadable_images(tmp_path, caplog):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((20, 20, 3), np.uint8))
    (tmp_path / "b.png").write_bytes(b"not an image")
    cv2.imwrite(str(tmp_path / "c.png"), np.zeros((20, 20, 3), np.uint8))
    frames = list(open_source(str(tmp_path), realtime=False, folder_fps=5).frames())
    assert [f.t for f in frames] == pytest.approx([0.0, 0.4])
    assert "b.png: cannot be read as an image" in caplog.text


def test_empty_folder_and_missing_path_are_clear_errors(tmp_path):
    with pytest.raises(SourceError, match="no images"):
        open_source(str(tmp_path))
    with pytest.raises(SourceError, match="no such file or folder"):
        open_source(str(tmp_path / "missing.mp4"))
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"garbage")
    with pytest.raises(SourceError, match="cannot be decoded as a video"):
        open_source(str(bad))


def test_picamera2_missing_says_how_to_install():
    try:
        import picamera2  # noqa: F401
    except ImportError:
        with pytest.raises(SourceError, match="apt install -y --no-install-recommends python3-picamera2"):
            open_source("picamera2")
    else:  # pragma: no cover - on a Pi
        pytest.skip("picamera2 is installed here")


class FlakyCamera:
    """Delivers a few frames, then 'disappears'."""

    def __init__(self, frames: int) -> None:
        self.left = frames
        self.released = False

    def read(self):
        time.sleep(0.005)
        if self.left <= 0:
            return None
        self.left -= 1
        return np.zeros((4, 4, 3), np.uint8)

    def release(self):
        self.released = True


def test_live_camera_failure_is_retried_not_raised(caplog):
    opened: list[FlakyCamera] = []
    attempts = {"n": 0}

    def opener():
        attempts["n"] += 1
        if attempts["n"] == 2:
            raise RuntimeError("device busy")
        cam = FlakyCamera(5)
        opened.append(cam)
        return cam

    statuses: list[str] = []
    src = LiveSource("fake", opener, fps=200, retry_s=0.05, retry_max_s=0.1, on_status=statuses.append)
    got = []
    for f in src.frames():
        got.append(f)
        if len(opened) >= 3:
            break
    src.close()
    assert attempts["n"] >= 4 and all(c.released for c in opened[:-1])
    assert any("camera failed" in s for s in statuses) and any("device busy" in s for s in statuses)
    assert "camera fake failed: no frame delivered" in caplog.text
    assert all(b.t >= a.t for a, b in zip(got, got[1:]))


def test_live_source_keeps_only_the_newest_frame():
    counter = {"i": 0}

    class FastCamera:
        def read(self):
            time.sleep(0.001)
            counter["i"] += 1
            return np.full((2, 2), counter["i"] % 256, np.uint8)

        def release(self):
            pass

    src = LiveSource("fast", FastCamera, fps=20)
    frames = []
    for f in src.frames():
        frames.append(f)
        if len(frames) == 5:
            break
    src.close()
    # about 50 frames were captured in the 0.2 s it took to hand out 5: the rest were dropped, not queued
    assert counter["i"] > 20
    assert frames[-1].index == 4


def test_a_camera_at_the_configured_rate_is_taken_frame_by_frame():
    """The Pi camera is asked for camera.fps frames a second. The loop then takes each frame as it comes
    rather than also sleeping until a due time first: two wake-ups a frame instead of one were most of
    what an empty room cost (docs/performance.md). A faster camera is still paced (the test above)."""

    class PacedCamera:  # 20 frames a second, as asked
        def __init__(self):
            self.next = time.monotonic()

        def read(self):
            self.next += 0.05
            time.sleep(max(0.0, self.next - time.monotonic()))
            return np.zeros((2, 2), np.uint8)

        def release(self):
            pass

    src = LiveSource("paced", PacedCamera, fps=20)
    sleeps = []
    wait = src._stop.wait
    src._stop.wait = lambda timeout=None: sleeps.append(timeout) or wait(timeout)  # type: ignore[method-assign]
    frames = []
    for f in src.frames():
        frames.append(f)
        if len(frames) == 30:
            break
    src.close()
    assert len(sleeps) <= 5, f"{len(sleeps)} sleeps until a due time for 30 frames"  # the first few: rate not yet known
    assert [f.index for f in frames] == list(range(30))
    assert frames[-1].t - frames[0].t == pytest.approx(29 * 0.05, rel=0.2)  # every frame, at the camera's rate


def test_close_stops_a_blocked_live_source():
    class DeadCamera:
        def read(self):
            time.sleep(0.05)
            return None

        def release(self):
            pass

    src = LiveSource("dead", DeadCamera, fps=10, retry_s=0.05)
    result = []
    th = threading.Thread(target=lambda: result.extend(src.frames()))
    th.start()
    time.sleep(0.3)
    src.close()
    th.join(timeout=3)
    assert not th.is_alive() and result == []


def test_a_path_object_opens_like_its_string(hamilton_clip, tmp_path):
    """Python callers pass pathlib.Path as often as str; it used to die in a regex with a TypeError."""
    assert isinstance(open_source(hamilton_clip, realtime=False), VideoFileSource)
    cv2.imwrite(str(tmp_path / "0.png"), np.zeros((20, 20, 3), np.uint8))
    assert isinstance(open_source(tmp_path, realtime=False), ImageFolderSource)


def _consume(src, frames: list, stop: threading.Event, cpu: dict) -> None:
    """The daemon's way of reading a source (tick_s=1.0), counting this thread's CPU time."""
    t0 = time.thread_time()
    for f in src.frames(tick_s=0.5):
        if f is not None:
            frames.append((time.monotonic(), f))
        cpu["s"] = time.thread_time() - t0
        if stop.is_set():
            return


def test_emptied_folder_waits_quietly_and_resumes(tmp_path, caplog):
    """Issue 15.1: images moved away and back. It used to spin (88 % of a core, millions of log lines) and
    advance the timeline per missing file, so after the refill the pacer waited for hours."""
    folder, away = tmp_path / "imgs", tmp_path / "away"
    folder.mkdir()
    away.mkdir()
    for i in range(20):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((20, 20, 3), i, np.uint8))
    statuses: list[str] = []
    src = ImageFolderSource(folder, fps=20, realtime=True, loop=True, on_status=statuses.append)
    frames: list = []
    stop, cpu = threading.Event(), {"s": 0.0}
    th = threading.Thread(target=_consume, args=(src, frames, stop, cpu), daemon=True)
    th.start()
    wait_until = time.monotonic() + 5
    while len(frames) < 10 and time.monotonic() < wait_until:
        time.sleep(0.05)
    assert len(frames) >= 10
    caplog.clear()
    for f in folder.iterdir():
        f.rename(away / f.name)
    time.sleep(0.5)
    cpu0, wall0, n_empty = cpu["s"], time.monotonic(), len(frames)
    time.sleep(3.0)
    cpu_empty, wall_empty = cpu["s"] - cpu0, time.monotonic() - wall0
    assert len(frames) == n_empty, "frames while the folder was empty"
    assert any(s.startswith("no images") for s in statuses), statuses
    for f in away.iterdir():
        f.rename(folder / f.name)
    refilled = time.monotonic()
    while len(frames) == n_empty and time.monotonic() - refilled < 10:
        time.sleep(0.05)
    back_after = time.monotonic() - refilled
    time.sleep(0.5)
    stop.set()
    src.close()
    th.join(3)
    assert not th.is_alive()
    assert len(frames) > n_empty and back_after <= 5.0, f"no frames {back_after:.1f} s after the refill"
    assert cpu_empty < 0.05 * wall_empty, f"{cpu_empty:.2f} CPU s in {wall_empty:.1f} s while empty"
    lines = [r for r in caplog.records if r.name.startswith("moodbox.vision.sources")]
    assert 1 <= len(lines) <= 5, [r.getMessage() for r in lines]
    assert statuses[-1] == "ok"
    ts = [f.t for _, f in frames]
    assert all(b > a for a, b in zip(ts, ts[1:]))
    gap = ts[n_empty] - ts[n_empty - 1]
    assert 2.0 < gap < 10.0, f"the timeline should show the ~3.5 s without frames, not {gap:.1f} s"


def test_folder_that_disappears_and_comes_back(tmp_path, caplog):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(5):
        cv2.imwrite(str(folder / f"{i}.png"), np.zeros((20, 20, 3), np.uint8))
    statuses: list[str] = []
    src = ImageFolderSource(folder, fps=20, realtime=True, loop=True, on_status=statuses.append)
    frames: list = []
    stop, cpu = threading.Event(), {"s": 0.0}
    th = threading.Thread(target=_consume, args=(src, frames, stop, cpu), daemon=True)
    th.start()
    time.sleep(0.5)
    folder.rename(tmp_path / "gone")
    time.sleep(0.5)
    n, cpu0, wall0 = len(frames), cpu["s"], time.monotonic()
    time.sleep(2.0)
    assert len(frames) == n and cpu["s"] - cpu0 < 0.05 * (time.monotonic() - wall0)
    assert any("is gone" in s for s in statuses), statuses
    (tmp_path / "gone").rename(folder)
    t0 = time.monotonic()
    while len(frames) == n and time.monotonic() - t0 < scaled(10):
        time.sleep(0.05)
    stop.set()
    src.close()
    th.join(3)
    assert len(frames) > n and time.monotonic() - t0 <= scaled(5.0)
    assert len([r for r in caplog.records if r.name.startswith("moodbox.vision.sources")]) <= 5


def test_folder_of_only_unreadable_images_does_not_spin(tmp_path):
    """Fast replay (realtime off) of a loop whose every image is broken: nothing paces it but the wait."""
    (tmp_path / "a.png").write_bytes(b"not an image")
    src = ImageFolderSource(tmp_path, fps=20, realtime=False, loop=True)
    frames: list = []
    stop, cpu = threading.Event(), {"s": 0.0}
    th = threading.Thread(target=_consume, args=(src, frames, stop, cpu), daemon=True)
    th.start()
    time.sleep(2.0)
    stop.set()
    src.close()
    th.join(3)
    assert frames == [] and cpu["s"] < 0.1, f"{cpu['s']:.2f} CPU s in 2 s"


def test_vanished_camera_is_reported_quietly_and_reopened(caplog):
    """A camera unplugged for a while: status says so, a few log lines, little CPU, frames again after."""
    present = threading.Event()
    present.set()

    class Cam:
        def read(self):
            time.sleep(0.01)
            return np.zeros((4, 4, 3), np.uint8) if present.is_set() else None

        def release(self):
            pass

    def opener():
        if not present.is_set():
            raise RuntimeError("no such device")
        return Cam()

    statuses: list[str] = []
    src = LiveSource("cam", opener, fps=20, retry_s=0.1, retry_max_s=0.4, on_status=statuses.append)
    frames: list = []
    stop, cpu = threading.Event(), {"s": 0.0}
    th = threading.Thread(target=_consume, args=(src, frames, stop, cpu), daemon=True)
    th.start()
    time.sleep(0.5)
    present.clear()
    time.sleep(0.5)
    n = len(frames)
    cpu_proc0, wall0 = time.process_time(), time.monotonic()
    time.sleep(3.0)
    cpu_used = time.process_time() - cpu_proc0
    assert len(frames) == n and cpu_used < 0.05 * (time.monotonic() - wall0)
    assert statuses[-1] != "ok" and "no such device" in statuses[-1]
    present.set()
    t0 = time.monotonic()
    while len(frames) == n and time.monotonic() - t0 < scaled(10):
        time.sleep(0.05)
    stop.set()
    src.close()
    th.join(3)
    assert len(frames) > n and time.monotonic() - t0 <= scaled(5.0) and statuses[-1] == "ok"
    lines = [r for r in caplog.records if r.name.startswith("moodbox.vision.sources")]
    assert len(lines) <= 5, [r.getMessage() for r in lines]


def test_a_looping_folder_may_start_empty(tmp_path):
    """The daemon opening an empty folder used to fail and retry with backoff (up to a minute late)."""
    statuses: list[str] = []
    src = open_source(str(tmp_path), realtime=True, loop=True, folder_fps=20, on_status=statuses.append)
    frames: list = []
    stop, cpu = threading.Event(), {"s": 0.0}
    th = threading.Thread(target=_consume, args=(src, frames, stop, cpu), daemon=True)
    th.start()
    time.sleep(1.5)
    assert frames == [] and statuses and statuses[-1].startswith("no images")
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((20, 20, 3), np.uint8))
    t0 = time.monotonic()
    while not frames and time.monotonic() - t0 < scaled(10):
        time.sleep(0.05)
    stop.set()
    src.close()
    th.join(3)
    assert frames and time.monotonic() - t0 <= scaled(5.0) and statuses[-1] == "ok"
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no images"):  # without loop an empty folder is still an error
        open_source(str(tmp_path / "empty"), loop=False)
