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

from tests.util import scaled

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
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 2 and proc.stdout.startswith('{"t": 0.0')


def test_analyze_into_a_closed_pipe_ends_quietly():
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{sys.executable} -m moodbox analyze {' '.join([str(STILL)] * 40)} | head -n 1"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
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


@pytest.mark.parametrize(
    "args",
    [
        ("--config", "samples/short_hamilton_clip.mp4", "analyze"),  # before the command: argparse's usage error
        ("analyze", str(STILL), "--config", "samples/short_hamilton_clip.mp4"),
        ("analyze", str(STILL), "--config", "samples"),
        ("check-config", "samples/short_hamilton_clip.mp4"),
        ("check-config", "nothere.yaml"),
        ("replay",),
        ("--log-level", "LOUD", "analyze", str(STILL)),
    ],
)
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
    from moodbox.vision.native import quiet_native_info

    with quiet_native_info():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"ERROR: something a user must see\n")
    err = capfd.readouterr().err
    assert "XNNPACK" not in err
    assert "ERROR: something a user must see" in err


def _start(args: list[str]) -> subprocess.Popen:
    # A terminal's Ctrl-C: SIGINT back to its default in the child, since a suite started in the
    # background by a non-interactive shell inherits SIGINT ignored, and Python then never raises
    # KeyboardInterrupt (the command would run on to its end).
    return subprocess.Popen(
        [*MOODBOX, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _interrupt(args: list[str], after_s: float, first_line: bool) -> subprocess.CompletedProcess:
    """Ctrl-C ``after_s`` into the command, or (``first_line``) that long after its first line of output:
    on a slow machine (an emulated arm64 chroot takes many seconds to start) the command is then running."""
    proc = _start(args)
    if first_line:
        assert proc.stdout.readline(), "the command printed nothing"
    time.sleep(after_s)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=scaled(60))
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize(
    "args, code, first_line",
    [
        (["replay", "samples/short_hamilton_clip.mp4"], 0, True),  # Ctrl-C is how a real-time replay is stopped
        (["bench", "--live-seconds", "30"], 130, False),
        (["analyze", *[str(STILL)] * 2000], 130, True),
    ],
)
def test_ctrl_c_ends_without_a_traceback(args, code, first_line):
    proc = _interrupt(args, after_s=2.0 if first_line else scaled(4.0), first_line=first_line)
    no_traceback(proc)
    assert proc.returncode == code, proc.stderr[-2000:]


def test_a_second_ctrl_c_during_clean_up_ends_quietly():
    """Ctrl-C twice (an impatient owner during bench's clean-up): the process ends at once, no traceback."""
    proc = _start(["bench", "--live-seconds", "30"])
    time.sleep(scaled(4.0))
    for _ in range(2):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.02)
    out, err = proc.communicate(timeout=scaled(60))
    assert "Traceback" not in err, err[-2000:]
    assert proc.returncode in (130, -signal.SIGINT), err[-2000:]


# pybind11, which builds LiteRT's native module, turns any exception during the module's initialisation
# (a Ctrl-C included) into ImportError('initialization failed'); this stands in for that module.
_PYBIND11_LIKE_IMPORT = """
import importlib.abc, importlib.util, os, signal, sys, time
from moodbox import cli

class PybindLike(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name == "ai_edge_litert.interpreter":
            return importlib.util.spec_from_loader(name, self)
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        try:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the native module initialises
            time.sleep(1.0)
        except BaseException as exc:
            raise ImportError("initialization failed") from exc
        sys.meta_path.remove(self)
        del sys.modules["ai_edge_litert.interpreter"]
        import ai_edge_litert.interpreter as real
        module.Interpreter = real.Interpreter

sys.meta_path.insert(0, PybindLike())
sys.exit(cli.main(sys.argv[1:]))
"""


def test_ctrl_c_while_litert_loads_is_an_interruption_not_a_missing_interpreter():
    """On a Pi the interpreter takes a second or two to load at start, long enough for a Ctrl-C to land in
    its native module's initialisation: that read as "no TFLite interpreter installed" (exit 2)."""
    proc = subprocess.run(
        [sys.executable, "-c", _PYBIND11_LIKE_IMPORT, "analyze", str(STILL)],
        capture_output=True,
        text=True,
        timeout=scaled(120),
        cwd=ROOT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    no_traceback(proc)
    assert "no TFLite interpreter" not in proc.stderr, proc.stderr
    assert proc.returncode == 130 and proc.stderr.strip().endswith("interrupted"), proc.stderr[-2000:]


def _interpreter_start() -> float:
    """Seconds this machine takes to start Python up to the point where ``-m`` runs a module."""
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-c", "import runpy"], check=True)
    return time.monotonic() - t0


def test_ctrl_c_while_the_command_loads_ends_quietly():
    """Ctrl-C in the first second, while numpy, OpenCV, pydantic and LiteRT load (several seconds on a
    Pi): it landed inside their imports and showed their tracebacks, or an ImportError from numpy."""
    # Python's own start (before runpy runs any of moodbox) cannot be guarded by any program: on a busy
    # machine a fixed 0.06 s landed there (a fresh trixie chroot). The Ctrl-Cs come after it.
    startup = min(_interpreter_start() for _ in range(3))
    for i in range(10):
        proc = _start(["analyze", str(STILL)])
        time.sleep(startup + scaled(0.06 + 0.07 * i))
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=scaled(60))
        assert "Traceback" not in err and "Exception ignored" not in err and "Error" not in err, err[-2000:]
        # 0: it had finished; killed by SIGINT: it was ending (Python puts the default action back then)
        assert proc.returncode in (0, 130, -signal.SIGINT), err[-2000:]
        assert proc.returncode != 130 or err.strip().endswith("interrupted"), err[-2000:]
