"""The box on both numpy lines a Pi has: the venv there shares the system's numpy (the one Raspberry Pi
OS's picamera2 is built on), 1.24 on bookworm and 2.x on trixie. The development venv has the newest 2.x;
this test builds a second venv with numpy 1.24 (cached in .cache/, wheels only) and checks that the
vision pipeline gives the same answers there, frame for frame, and that its unit tests pass.

numpy 1.24 has wheels for Python 3.8-3.11 only, so on a newer Python (trixie's 3.13, where the system's
numpy is 2.x anyway) it is skipped with that reason; the emulated arm64 bookworm check
(scripts/arm64-check) runs the whole suite on apt's numpy 1.24 as well.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import CLIP, ROOT
from tests.util import scaled

OLD_NUMPY = "1.24.*"
UNIT_TESTS = ["tests/test_emotions.py", "tests/test_tracker.py", "tests/test_changemap.py", "tests/test_smoothing.py"]


@pytest.fixture(scope="module")
def old_numpy_python() -> str:
    if sys.version_info >= (3, 12):
        pytest.skip(
            f"numpy 1.24 has no wheel for Python {sys.version_info.major}.{sys.version_info.minor} "
            "(bookworm's Python 3.11 is where the Pi has it)"
        )
    if np.__version__.startswith("1.24."):
        pytest.skip(f"this venv already runs numpy {np.__version__}: the whole suite is the test")
    stamp = hashlib.sha1((ROOT / "pyproject.toml").read_bytes() + OLD_NUMPY.encode()).hexdigest()[:12]
    venv = ROOT / ".cache" / "numpy124-venv"
    python = venv / "bin" / "python"
    if not (venv / f".stamp-{stamp}").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        proc = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--only-binary=:all:", "-e", f"{ROOT}[test]", f"numpy=={OLD_NUMPY}"],
            capture_output=True,
            text=True,
            timeout=scaled(900),
        )
        assert proc.returncode == 0, f"numpy {OLD_NUMPY} with the runtime and test pins did not install:\n{proc.stderr[-3000:]}"
        (venv / f".stamp-{stamp}").touch()
    return str(python)


def _versions(python: str) -> str:
    return subprocess.run(
        [python, "-c", "import numpy, cv2; print(numpy.__version__, cv2.__version__)"], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_the_pipeline_answers_the_same_on_numpy_1_24(old_numpy_python):
    old, new = _versions(old_numpy_python), _versions(sys.executable)
    assert old.startswith("1.24.") and not new.startswith("1.24."), (old, new)

    def replay(python: str) -> list[dict]:
        proc = subprocess.run(
            [python, "-m", "moodbox", "replay", str(CLIP), "--no-realtime", "--json"],
            capture_output=True,
            text=True,
            timeout=scaled(300),
            cwd=ROOT,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        return [json.loads(line) for line in proc.stdout.splitlines()]

    lines_old, lines_new = replay(old_numpy_python), replay(sys.executable)
    assert len(lines_old) == len(lines_new) > 50
    faces = sum(len(line["faces"]) for line in lines_new)
    assert faces > 0 and any(line["emotion"] for line in lines_new)
    for a, b in zip(lines_old, lines_new):
        assert a == b, f"numpy {old} and {new} differ at t={a['t']}: {a} / {b}"
    print(f"numpy {old} and {new}: {len(lines_new)} frames, {faces} faces, identical boxes, scores and stable emotions")


def test_the_vision_unit_tests_pass_on_numpy_1_24(old_numpy_python):
    proc = subprocess.run(
        [old_numpy_python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *UNIT_TESTS],
        capture_output=True,
        text=True,
        timeout=scaled(600),
        cwd=ROOT,
    )
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-2000:]
    assert proc.returncode == 0 and " passed" in tail and "failed" not in tail, proc.stdout[-3000:]
