"""`moodbox bench` as an owner runs it on the Pi: the package installed from a wheel, no repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_without_a_source_works_from_an_installed_wheel(tmp_path):
    wheels, site, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(ROOT)], check=True, cwd=elsewhere, timeout=300)
    [wheel] = wheels.glob("moodbox-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = "import moodbox, sys; from moodbox.cli import main; print(moodbox.__file__, file=sys.stderr); sys.exit(main())"
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "--log-level",
            "ERROR",
            "bench",
            "--frames",
            "15",
            "--live-seconds",
            "0",
            "--no-agreement",
            "--json",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert str(site) in out.stderr  # the installed copy ran, not the checkout
    report = json.loads(out.stdout)
    assert report["frames"] == 15 and report["source"].startswith(str(site))
    assert report["fps"] > 0
