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
    # resident memory, and its two parts: the process's own and shared libraries' pages
    assert report["rss_own_mb"] > 0 and report["rss_libraries_mb"] > 0
    assert abs(report["rss_own_mb"] + report["rss_libraries_mb"] - report["rss_mb"]) < 2


def test_memory_is_read_as_the_daemon_holds_frames(hamilton_clip, monkeypatch):
    """The bench's resident memory is the pipeline's after warm-up, with no more decoded frames alive than
    the daemon holds; it once kept all twenty warm-up frames (18 MB at 640x480) while reading it."""
    import gc

    from moodbox import bench
    from moodbox.config import Config
    from moodbox.vision.sources import Frame

    alive: list[int] = []

    def memory() -> tuple[float, float, float]:
        gc.collect()
        alive.append(sum(isinstance(o, Frame) for o in gc.get_objects()))
        return 3.0, 1.0, 2.0

    monkeypatch.setattr(bench, "memory", memory)
    report = bench.run(Config(), str(hamilton_clip), limit=25, live_seconds=0, check_agreement=False)
    assert (report.rss_mb, report.rss_own_mb, report.rss_libraries_mb) == (3.0, 1.0, 2.0) and report.frames == 25
    assert alive and alive[0] <= 1, f"{alive[0]} decoded frames alive when memory was read"
