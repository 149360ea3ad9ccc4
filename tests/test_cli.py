"""The command line as a user runs it: real model, real files, exit codes and messages."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tests.util import scaled


def moodbox(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "moodbox", *args], capture_output=True, text=True, timeout=scaled(timeout))


def test_analyze_json(astronaut_png):
    proc = moodbox("analyze", str(astronaut_png), "--json")
    assert proc.returncode == 0, proc.stderr
    [line] = proc.stdout.splitlines()
    obj = json.loads(line)
    assert obj["image"] == str(astronaut_png)
    [face] = obj["faces"]
    assert face["emotion"] == "happy" and len(face["box"]) == 4
    assert set(face["scores"]) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}


def test_analyze_bad_inputs_exit_1_and_keep_going(tmp_path, astronaut_png):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff garbage")
    proc = moodbox("analyze", str(text), str(broken), str(tmp_path / "missing.png"), str(astronaut_png), "--json")
    assert proc.returncode == 1
    assert f"{text}: cannot be read as an image" in proc.stderr
    assert f"{broken}: cannot be read as an image" in proc.stderr
    assert "missing.png: no such file" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert json.loads(proc.stdout)["image"] == str(astronaut_png)  # the good one still analysed


def test_missing_model_is_a_config_error(tmp_path, astronaut_png):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model: {{path: {tmp_path / 'gone.tflite'}}}\n")
    proc = moodbox("analyze", str(astronaut_png), "--config", str(cfg))
    assert proc.returncode == 2
    assert "gone.tflite: model file not found" in proc.stderr and "Traceback" not in proc.stderr


def test_bad_config_exit_2_for_every_command(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("camera: {fsp: 3}\n")
    for cmd in (["analyze", "x.png"], ["replay", "x"], ["run"]):
        proc = moodbox(*cmd, "--config", str(cfg))
        assert proc.returncode == 2, cmd
        assert "camera.fsp: unknown key" in proc.stderr and "Traceback" not in proc.stderr


def test_replay_video_json_lines_realtime_on_and_off(hamilton_clip):
    fast = moodbox("replay", str(hamilton_clip), "--json", "--no-realtime")
    assert fast.returncode == 0, fast.stderr
    lines = [json.loads(line) for line in fast.stdout.splitlines()]
    assert len(lines) > 250
    for obj in lines:
        assert set(obj) == {"t", "faces", "emotion", "smoothed", "mood"}
        assert isinstance(obj["t"], float) and isinstance(obj["faces"], list)
        # the smoother's scores the stable emotion was chosen from (issue 26): anyone can see how clear it is
        assert all(0.0 <= p <= 1.0 for p in obj["smoothed"].values())
        if obj["emotion"]:
            assert obj["emotion"] in obj["smoothed"]
        for f in obj["faces"]:
            assert set(f) == {"box", "emotion", "scores"}
    assert lines[-1]["t"] == pytest.approx(9.1, abs=0.3)
    assert sum(bool(o["faces"]) for o in lines) > 20
    slow = moodbox("replay", str(hamilton_clip), "--json", "--realtime")
    assert slow.returncode == 0
    assert [json.loads(line) for line in slow.stdout.splitlines()] == lines


def test_replay_bad_sources(tmp_path):
    proc = moodbox("replay", str(tmp_path))
    assert proc.returncode == 1 and "no images" in proc.stderr and "Traceback" not in proc.stderr
    proc = moodbox("replay", str(tmp_path / "nope.mp4"))
    assert proc.returncode == 1 and "no such file or folder" in proc.stderr


def test_replay_image_folder(tmp_path, astronaut_png):
    img = cv2.imread(str(astronaut_png))
    for i in range(12):
        cv2.imwrite(str(tmp_path / f"{i:03d}.jpg"), img)
    cv2.imwrite(str(tmp_path / "999.jpg"), np.zeros((480, 640, 3), np.uint8))
    proc = moodbox("replay", str(tmp_path), "--json", "--no-realtime", "--folder-fps", "2")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["t"] for o in lines] == pytest.approx([i / 2 for i in range(13)])
    assert lines[-2]["emotion"] == "happy"
    assert lines[-1]["faces"] == []


def test_bench_agreement_ignores_the_order_of_faces_of_nearly_one_size():
    """Two faces of nearly one size swap places between passes; that is the same set of faces."""
    from moodbox.bench import _partner, _same_faces

    a, b = (28, 64, 67, 67), (148, 96, 65, 65)
    assert _same_faces([(148, 96, 64, 64), (29, 64, 68, 68)], [a, b])
    assert not _same_faces([(29, 64, 68, 68)], [a, b])
    assert not _same_faces([(29, 64, 68, 68), (400, 10, 60, 60)], [a, b])
    assert _partner(a, [(148, 96, 64, 64), (29, 64, 68, 68)]) == 1
    assert _partner(a, [(300, 300, 60, 60)]) is None


def test_bench_replays_a_clip_live_at_its_own_rate():
    """A 10 frames/s clip replayed as a 30 frames/s camera is a fast-forward: three times the motion."""

    from moodbox.bench import clip_fps
    from moodbox.vision.sources import Frame

    img = np.zeros((4, 4), np.uint8)
    assert clip_fps([Frame(image=img, t=i * 0.1, index=i) for i in range(20)]) == pytest.approx(10.0)
    assert clip_fps([Frame(image=img, t=i / 30, index=i) for i in range(20)]) == pytest.approx(30.0)
    assert clip_fps([Frame(image=img, t=0.0, index=0)]) == 30.0


def test_every_command_refuses_what_check_config_refuses(tmp_path):
    """Issue 15.4/15.5: one check for all. A missing CA file used to pass check-config and crash run with
    an unnamed FileNotFoundError (exit 1: systemd restarted it every 5 s)."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"mqtt: {{tls: {{enabled: true, ca_file: {tmp_path / 'ca.pem'}}}}}\n")
    expect = f"mqtt.tls.ca_file: {tmp_path / 'ca.pem'}: file not found"
    proc = moodbox("check-config", str(cfg))
    assert proc.returncode == 2 and expect in proc.stderr
    for cmd in (["run"], ["analyze", "x.png"], ["replay", "x"], ["bench"], ["discovery"]):
        proc = moodbox(*cmd, "--config", str(cfg))
        assert proc.returncode == 2, (cmd, proc.stderr)
        assert expect in proc.stderr and "Traceback" not in proc.stderr, cmd


@pytest.mark.parametrize("threads", [None, 2])
def test_commands_run_opencv_with_the_configured_threads(tmp_path, astronaut_png, threads):
    """OpenCV's pool busy-waits between calls: on a box looking at frames ten times a second its default
    (a thread per core) cost an empty room twice the CPU. Commands that look at pictures use
    detection.threads (default one)."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("logging: {level: WARNING}\n" + (f"detection: {{threads: {threads}}}\n" if threads else ""))
    for command in (["analyze", str(astronaut_png)], ["replay", str(astronaut_png.parent), "--no-realtime"]):
        code = (
            "import sys, cv2; cv2.setNumThreads(3); from moodbox import cli\n"
            f"rc = cli.main({command + ['--config', str(cfg)]!r})\n"
            "print('threads', cv2.getNumThreads(), file=sys.stderr); sys.exit(rc)"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=scaled(120))
        assert proc.returncode == 0, proc.stderr
        assert f"threads {threads or 1}" in proc.stderr.splitlines()[-1], (command, proc.stderr)
