"""The README's first command, end to end (its setup part is scripts/setup, run by CI itself)."""

from __future__ import annotations

import re
import subprocess
import sys


def test_demo_runs_the_daemon_with_private_servers_and_cleans_up(hamilton_clip):
    proc = subprocess.run(
        [sys.executable, "-m", "moodbox.demo", str(hamilton_clip), "--duration", "12", "--track-seconds", "3"],
        capture_output=True, text=True, timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert re.search(r"private mpd on 127\.0\.0\.1:\d+, mosquitto on 127\.0\.0\.1:\d+", out)
    assert "[mqtt] availability: online" in out
    assert re.search(r"\[mqtt\] state: .*song='[^']+' from (playlist|query|fallback)", out), out[-3000:]
    assert "pipeline running" in out
    assert "[mqtt] availability: offline" in out  # the daemon's clean stop
    assert proc.stdout.rstrip().endswith("demo: stopped everything it started")
    tmp = re.search(r"demo: working in (\S+)", out).group(1)
    import os

    assert not os.path.exists(tmp)
