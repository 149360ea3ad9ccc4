"""The Pi's architecture, checked here: scripts/arm64-check converges the role into an emulated arm64
Debian (Cortex-A72, a Pi's /proc/cpuinfo) twice, compares ``moodbox analyze`` there with this machine's
(the same network inputs to the byte; outputs within LiteRT's XNNPACK rounding, one int8 step), and runs
the suite there. About an hour; needs root."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("release", ["bookworm", "trixie"])
def test_arm64_converges_analyzes_like_x86_and_passes_the_suite(release):
    if os.geteuid() != 0:
        pytest.skip("needs root (debootstrap, binfmt_misc and chroot)")
    proc = subprocess.run([str(ROOT / "scripts" / "arm64-check"), release], capture_output=True, text=True, timeout=3 * 3600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "second run changed nothing" in out
    assert "the network's int8 inputs are the same bytes" in out
    assert "same boxes and emotions" in out
    assert f"{release} arm64 converged twice, analyze matches x86" in out and "suite passed" in out
