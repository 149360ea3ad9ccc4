"""The README's first command, end to end (its setup part is scripts/setup, run by CI itself)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.util import scaled


def test_demo_runs_the_daemon_with_private_servers_and_cleans_up(hamilton_clip):
    proc = subprocess.run(
        [sys.executable, "-m", "devtools.demo", str(hamilton_clip), "--duration", "12", "--track-seconds", "3"],
        capture_output=True,
        text=True,
        timeout=scaled(120),
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
    assert not os.path.exists(tmp)


def test_demo_says_it_is_silent_and_shows_the_logs_confidence(hamilton_clip):
    """One confidence, one meaning: the MQTT line of a new stable emotion shows the log's figure."""
    proc = subprocess.run(
        # long enough for a stable emotion even where inference is slow (an emulated arm64 runs ~2 frames/s)
        [sys.executable, "-m", "devtools.demo", "--duration", str(round(scaled(14))), "--track-seconds", "3"],
        capture_output=True,
        text=True,
        timeout=scaled(120),
        env={**os.environ, "MOODBOX_SHARED": "/nonexistent"},
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "demo: silent: mpd plays into its null output (scripts/demo --sound" in out
    assert "9 s of film, looping" in out
    logged = re.findall(r"stable emotion: (\w+) \((\d\.\d\d)\)", out)
    published = re.findall(r"\[mqtt\] state: emotion=(\w+) \((\d\.\d\d)\)", out)
    assert logged, out[-3000:]
    for emotion, figure in logged:
        assert (emotion, figure) in published, f"log: {emotion} ({figure}); MQTT lines: {published}"


def test_mpd_can_play_aloud(tmp_path):
    from devtools.demo import sound_output
    from devtools.servers import Mpd

    mpd = Mpd(tmp_path / "mpd", tmp_path, tmp_path, output="alsa")
    mpd.write_config()
    assert 'type "alsa"' in (tmp_path / "mpd" / "mpd.conf").read_text()
    assert sound_output("pipewire") == "pipewire"
    assert sound_output("auto") in ("pulse", "alsa")
    with pytest.raises(ValueError, match="expected one of null, alsa, pulse, pipewire"):
        Mpd(tmp_path / "x", tmp_path, tmp_path, output="jack")
