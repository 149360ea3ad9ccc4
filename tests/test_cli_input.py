"""No traceback from any command on any input a user can type or pipe: a closed pipe, Ctrl-C, missing
files, folders given as images, binary files given as configs; and no native-library chatter."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MOODBOX = [sys.executable, "-m", "moodbox"]
STILL = ROOT / "samples" / "hamilton_still.jpg"


def run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*MOODBOX, *args], capture_output=True, text=True, timeout=300, cwd=ROOT, **kw)


def no_traceback(proc) -> str:
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out and "Exception ignored" not in out, out[-3000:]
    return out


def test_replay_json_into_head_ends_quietly(hamilton_clip):
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{sys.executable} -m moodbox replay {hamilton_clip} --json | head -n 2"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 2 and proc.stdout.startswith('{"t": 0.0')


def test_analyze_into_a_closed_pipe_ends_quietly():
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{sys.executable} -m moodbox analyze {' '.join([str(STILL)] * 40)} | head -n 1"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    no_traceback(proc)
    assert proc.returncode == 0 and proc.stdout.count("\n") == 1


def test_replay_of_a_missing_file_blames_the_argument():
    proc = run("replay", "nothere.mp4")
    out = no_traceback(proc)
    assert proc.returncode == 1
    assert "nothere.mp4: no such file or folder" in out
    assert "camera.source" not in out


def test_bench_of_a_missing_source_blames_the_argument():
    proc = run("bench", "--source", "nothere.mp4")
    out = no_traceback(proc)
    assert proc.returncode == 1 and "nothere.mp4: no such file or folder (bench --source" in out


def test_analyze_says_a_folder_is_not_an_image_and_goes_on():
    proc = run("analyze", "samples", "nothere.png", str(STILL))
    out = no_traceback(proc)
    assert proc.returncode == 1
    assert "samples: is a folder, not an image" in out
    assert "nothere.png: no such file" in out
    assert "face at" in proc.stdout  # the readable image is still analysed


@pytest.mark.parametrize("args", [
    ("--config", "samples/short_hamilton_clip.mp4", "analyze"),  # before the command: argparse's usage error
    ("analyze", str(STILL), "--config", "samples/short_hamilton_clip.mp4"),
    ("analyze", str(STILL), "--config", "samples"),
    ("check-config", "samples/short_hamilton_clip.mp4"),
    ("check-config", "nothere.yaml"),
    ("replay",),
    ("--log-level", "LOUD", "analyze", str(STILL)),
])
def test_bad_arguments_exit_2_with_a_message(args):
    proc = run(*args)
    out = no_traceback(proc)
    assert proc.returncode == 2, out
    assert out.strip()


def test_a_binary_config_file_is_named():
    proc = run("analyze", str(STILL), "--config", "samples/short_hamilton_clip.mp4")
    assert "samples/short_hamilton_clip.mp4" in proc.stderr and "not UTF-8 text" in proc.stderr


def test_litert_does_not_announce_its_delegate():
    proc = run("analyze", str(STILL))
    assert proc.returncode == 0
    assert "XNNPACK" not in proc.stdout + proc.stderr
    assert "face at" in proc.stdout


def test_stderr_lines_other_than_litert_info_are_passed_on(capfd):
    from moodbox.native import quiet_native_info

    with quiet_native_info():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"ERROR: something a user must see\n")
    err = capfd.readouterr().err
    assert "XNNPACK" not in err
    assert "ERROR: something a user must see" in err


def _interrupt(args: list[str], after_s: float) -> subprocess.CompletedProcess:
    # A terminal's Ctrl-C: SIGINT back to its default in the child, since a suite started in the
    # background by a non-interactive shell inherits SIGINT ignored, and Python then never raises
    # KeyboardInterrupt (the command would run on to its end).
    proc = subprocess.Popen([*MOODBOX, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(after_s)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("args, code", [
    (["replay", "samples/short_hamilton_clip.mp4"], 0),  # Ctrl-C is how a real-time replay is stopped
    (["bench", "--live-seconds", "30"], 130),
    (["analyze", *[str(STILL)] * 400], 130),
])
def test_ctrl_c_ends_without_a_traceback(args, code):
    proc = _interrupt(args, after_s=4.0)
    no_traceback(proc)
    assert proc.returncode == code, proc.stderr[-2000:]


def test_a_second_ctrl_c_during_clean_up_ends_quietly():
    """Ctrl-C twice (an impatient owner during bench's clean-up): the process ends at once, no traceback."""
    proc = subprocess.Popen([*MOODBOX, "bench", "--live-seconds", "30"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(4.0)
    for _ in range(2):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.02)
    out, err = proc.communicate(timeout=60)
    assert "Traceback" not in err, err[-2000:]
    assert proc.returncode in (130, -signal.SIGINT), err[-2000:]
