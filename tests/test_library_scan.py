"""`moodbox library scan` against a real MPD (stickers), real ffmpeg and the real tagger on LiteRT, on
a library generated here: tones and noise made by sox and numpy (they say nothing of the tagger's taste,
which rests on the fidelity check in test_musicnn_export and on the published model)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import mpd
import numpy as np
import pytest
import yaml

from devtools.servers import Mpd, free_port, make_library
from moodbox.library.status import LibraryStatus, StatusWatch
from moodbox.library.tagger import Tagger
from moodbox.music.analysis import DEFAULT_MOOD_TAGS
from tests.util import scaled, wait_for

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed: scripts/setup installs it")


def synth_wav(path: Path, seed: int, seconds: float = 12.0, rate: int = 22050) -> None:
    """A few seconds of 'music': a chord progression with harmonics, a beat and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    root = 110 * 2 ** (rng.integers(0, 12) / 12)
    audio = np.zeros_like(t)
    for k, step in enumerate(rng.choice([0, 3, 4, 7, 9], size=4)):
        seg = (t >= k * seconds / 4) & (t < (k + 1) * seconds / 4)
        for h in (1, 2, 3):
            audio[seg] += np.sin(2 * np.pi * root * 2 ** (step / 12) * h * t[seg]) / h
    bpm = rng.uniform(70, 150)
    audio += 0.6 * np.exp(-30 * ((t * bpm / 60) % 1)) * rng.standard_normal(len(t))
    audio = 0.3 * audio / np.max(np.abs(audio))
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((audio * 32767).astype("<i2").tobytes())


@pytest.fixture
def lib(tmp_path):
    """A music folder: 3 tagged ogg tones (sox) and 4 synthesised wav pieces; an MPD with stickers on it."""
    tracks = [{"file": f"tones/tone{i}.ogg", "artist": "Sox", "title": f"Tone {i}", "genre": "Pop"} for i in range(3)]
    music, playlists = make_library(tmp_path / "lib", tracks, seconds=8.0)
    for i in range(4):
        synth_wav(music / "synth" / f"piece{i}.wav", seed=i)
    server = Mpd(tmp_path / "mpd", music, playlists)
    server.start()
    yield server
    server.stop()


def config(tmp_path: Path, server: Mpd, **music) -> Path:
    cfg = {
        "music": {
            "mpd": {"host": "127.0.0.1", "port": server.port},
            "library_dir": str(server.music),
            "state_dir": str(tmp_path / "state"),
            **music,
        }
    }
    path = tmp_path / "moodbox.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def scan(cfg: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    """A whole scan; its time limit scaled for this machine (the resumed 20-track scan runs for minutes
    on an emulated arm64 chroot, where an unscaled 240 s ended the Ctrl-C test)."""
    return subprocess.run(
        [sys.executable, "-m", "moodbox", "library", "scan", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=scaled(timeout),
    )


def start_scan(cfg: Path) -> subprocess.Popen:
    """The scan in the background, as a terminal starts it: a suite started in the background by a
    non-interactive shell inherits SIGINT ignored, and the scan (rightly) keeps a parent's choice to
    ignore it, so SIGINT goes back to its default in the child."""
    return subprocess.Popen(
        [sys.executable, "-m", "moodbox", "library", "scan", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def stickers(server: Mpd, name: str) -> dict[str, dict]:
    c = mpd.MPDClient()
    c.connect("127.0.0.1", server.port)
    try:
        return {i["file"]: json.loads(i["sticker"].partition("=")[2]) for i in c.sticker_find("song", "", name)}
    finally:
        c.disconnect()


def files(server: Mpd) -> set[str]:
    return {p.relative_to(server.music).as_posix() for p in server.music.rglob("*") if p.is_file()}


def test_every_default_mood_tag_is_one_of_the_taggers_labels():
    labels = set(Tagger().meta.labels)
    assert len(labels) == 50
    assert {t for ws in DEFAULT_MOOD_TAGS.values() for t in ws} <= labels


def test_scan_stores_tags_and_moods_for_every_track_and_a_second_scan_decodes_nothing(tmp_path, lib):
    cfg = config(tmp_path, lib)
    first = scan(cfg)
    assert first.returncode == 0, first.stderr
    labels = Tagger().meta.labels
    tags, moods, done = (stickers(lib, n) for n in ("moodbox_tags", "moodbox_moods", "moodbox_file"))
    assert set(tags) == set(moods) == set(done) == files(lib)
    for file in tags:
        assert list(tags[file]) == list(labels) and all(0.0 <= v <= 1.0 for v in tags[file].values())
        assert set(moods[file]) == set(DEFAULT_MOOD_TAGS)
        assert done[file]["size"] == (lib.music / file).stat().st_size and done[file]["model"] == "musicnn_msd"
    assert "7 heard now, 0 unchanged" in first.stdout and "tracks per mood:" in first.stdout and "top tags:" in first.stdout
    assert LibraryStatus.read(tmp_path / "state" / "library.json").analysed == 7

    again = scan(cfg)
    assert again.returncode == 0, again.stderr
    assert "0 heard now, 7 unchanged (0 with new mood scores)" in again.stdout
    assert stickers(lib, "moodbox_tags") == tags

    # a changed file is heard again; the others are not
    synth_wav(lib.music / "synth" / "piece0.wav", seed=99)
    third = scan(cfg)
    assert "1 heard now, 6 unchanged" in third.stdout, third.stdout
    assert stickers(lib, "moodbox_tags")["synth/piece0.wav"] != tags["synth/piece0.wav"]


def test_new_mood_weights_recompute_the_moods_without_decoding(tmp_path, lib):
    assert scan(config(tmp_path, lib)).returncode == 0
    tags = stickers(lib, "moodbox_tags")
    reweighted = scan(config(tmp_path, lib, analysis={"moods": {"happy": {"happy": 1.0}}}))
    assert "0 heard now, 7 unchanged (7 with new mood scores)" in reweighted.stdout, reweighted.stdout
    moods = stickers(lib, "moodbox_moods")
    assert all(moods[f]["happy"] == pytest.approx(tags[f]["happy"], abs=1e-4) for f in tags)


def test_files_that_do_not_decode_are_named_in_one_line_and_skipped(tmp_path, lib):
    (lib.music / "junk.mp3").write_bytes(b"not audio at all " * 500)  # MPD cannot read it either
    # listed by MPD (read before it broke: its mtime is what MPD saw), no longer decodable
    victim = lib.music / "tones" / "tone1.ogg"
    st = victim.stat()
    victim.write_bytes(b"OggS" + os.urandom(st.st_size))
    os.utime(victim, (st.st_atime, st.st_mtime))
    result = scan(config(tmp_path, lib))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert [ln for ln in lines if "junk.mp3" in ln] and [ln for ln in lines if "tones/tone1.ogg" in ln], lines
    assert len(lines) == 2 and "Traceback" not in result.stderr, lines
    assert "2 do not decode" in result.stdout
    assert set(stickers(lib, "moodbox_tags")) == files(lib) - {"junk.mp3", "tones/tone1.ogg"}
    again = scan(config(tmp_path, lib))  # not tried again until it changes, still counted
    assert "0 heard now" in again.stdout and "2 do not decode" in again.stdout


def lengthen(server: Mpd, copies: int = 20) -> None:
    """More tracks (copies of the pieces), so that a scan is still running when the test acts, on a fast
    machine too; MPD finds them when the scan asks it to update."""
    for i in range(4, 4 + copies):
        shutil.copy(server.music / "synth" / f"piece{i % 4}.wav", server.music / "synth" / f"piece{i}.wav")


def test_ctrl_c_stops_the_scan_and_the_next_one_goes_on_from_there(tmp_path, lib):
    lengthen(lib)
    total = len(files(lib))
    cfg = config(tmp_path, lib)
    t0 = time.monotonic()
    proc = start_scan(cfg)
    wait_for(lambda: len(stickers(lib, "moodbox_file")) >= 2, timeout=120, what="two tracks heard")
    per_track = (time.monotonic() - t0) / 2  # start-up included: generous
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=scaled(60))
    assert proc.returncode == 130, (out, err)
    assert "scan stopped after" in err and "Traceback" not in err, err
    kept = len(stickers(lib, "moodbox_file"))
    assert 2 <= kept < total
    # the rest takes as long as its tracks do here: on emulated arm64 LiteRT is far slower than the
    # pure-Python measure of time_factor() says, and a fixed 240 s (even scaled) ended this scan there
    rest = scan(cfg, timeout=max(240.0, 3 * per_track * (total - kept)))
    assert rest.returncode == 0 and f"{total - kept} heard now, {kept} unchanged" in rest.stdout, rest.stdout


def test_a_scan_runs_at_low_priority(tmp_path, lib):
    cfg = config(tmp_path, lib)
    proc = start_scan(cfg)
    try:

        def niceness() -> int | None:
            try:
                return int(Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
            except (OSError, IndexError, ValueError):
                return None

        # at least 10: a suite that itself runs niced (scripts/arm64-check) hands its own on
        wait_for(lambda: (niceness() or 0) >= 10, timeout=30, what="nice 10 or lower priority")
    finally:
        proc.wait(timeout=scaled(240))


@pytest.mark.parametrize(
    "problem, code, says",
    [
        ("no music folder", 1, "music folder {tmp}/nowhere does not exist"),
        ("MPD down", 1, "cannot reach MPD at 127.0.0.1:{port}"),
        ("empty library", 1, "MPD's database has no tracks"),
        ("folder is not MPD's", 1, "holds none of MPD's files"),
        ("no stickers", 1, "sticker_file"),
        ("no tagger", 2, "tagger model not found"),
        ("unknown tag", 2, "music.analysis.moods.happy: hapy not among the tagger's labels"),
    ],
)
def test_what_stops_a_scan_is_said_in_one_line(tmp_path, problem, code, says):
    music = tmp_path / "music"
    music.mkdir()
    if problem != "empty library":
        synth_wav(music / "a.wav", seed=1, seconds=4)
    server = Mpd(tmp_path / "mpd", music, tmp_path / "playlists")
    (tmp_path / "playlists").mkdir()
    if problem == "no stickers":
        original = server.write_config

        def without_stickers() -> None:
            original()
            conf = server.dir / "mpd.conf"
            conf.write_text("".join(ln for ln in conf.read_text().splitlines(True) if not ln.startswith("sticker_file")))

        server.write_config = without_stickers  # type: ignore[method-assign]
    server.start()
    try:
        extra: dict = {}
        port = server.port
        if problem == "no music folder":
            extra["library_dir"] = str(tmp_path / "nowhere")
        if problem == "folder is not MPD's":
            other = tmp_path / "other"
            other.mkdir()
            extra["library_dir"] = str(other)
        if problem == "MPD down":
            port = free_port()
        if problem == "no tagger":
            extra["analysis"] = {"model": str(tmp_path / "gone.tflite")}
        if problem == "unknown tag":
            extra["analysis"] = {"moods": {"happy": {"hapy": 1.0}}}
        cfg = config(tmp_path, server, **extra)
        raw = yaml.safe_load(cfg.read_text())
        raw["music"]["mpd"]["port"] = port
        if "library_dir" not in extra:
            raw["music"]["library_dir"] = str(music)
        else:
            raw["music"]["library_dir"] = extra["library_dir"]
        cfg.write_text(yaml.safe_dump(raw))
        t0 = time.monotonic()
        result = scan(cfg, timeout=60)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == code, (problem, result.stderr)
        assert len(lines) == 1 and says.format(tmp=tmp_path, port=port) in lines[0], lines
        assert time.monotonic() - t0 < 30  # no spin
    finally:
        server.stop()


def test_the_daemon_shows_the_last_scan_and_unknown_before_any(tmp_path):
    watch = StatusWatch(tmp_path)
    assert watch.get(now=0) == LibraryStatus(None, None, None)  # never scanned: unknown, not 0
    from moodbox.library import status

    status.write(tmp_path, analysed=180, tracks=200, finished=1796600000)
    assert watch.get(now=1) == LibraryStatus(None, None, None)  # looked at again only after RECHECK_S
    assert watch.get(now=20) == LibraryStatus(180, 200, "2026-12-06T23:33:20+00:00")
    (tmp_path / "library.json").write_text("{torn")
    os.utime(tmp_path / "library.json", (1, 1))
    assert watch.get(now=40) == LibraryStatus(None, None, None)


def test_the_taggers_numpy_front_end_gives_musicnns_frames():
    """The device's log-mel of a piece (frames without padding) equals the interior frames of the
    reference recipe over the whole track (the metadata's centred, reflect-padded STFT)."""
    from tests.test_musicnn_export import numpy_logmel

    tagger = Tagger()
    meta = json.loads(tagger.model_path.with_suffix(".json").read_text())
    rng = np.random.default_rng(0)
    track = (0.1 * rng.standard_normal(16000 * 6)).astype(np.float32)
    reference = numpy_logmel(track, meta)
    hop, n_fft = meta["hop_length"], meta["n_fft"]
    start = 10 * hop - n_fft // 2  # its first frame is centred on the reference's frame 10
    from moodbox.library.tagger import log_mel

    mine = log_mel(track[start : start + tagger.meta.patch_samples], tagger.meta)
    assert mine.shape == (187, 96)
    np.testing.assert_allclose(mine, reference[10 : 10 + 187], atol=1e-3)


def test_the_progress_bar_shows_on_a_terminal_only_and_log_lines_start_clean():
    import io
    import logging

    from moodbox.library.command import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Terminal()
    bar = Progress(term)
    bar(3, 10, "a/b.flac")
    assert term.getvalue().endswith("[#########.....................] 3/10 a/b.flac")
    bar.filter(logging.LogRecord("x", logging.WARNING, "", 0, "broken", None, None))
    assert term.getvalue().endswith("\r\033[K")  # the bar is wiped before the warning is written
    bar(10, 10, "")
    assert term.getvalue().endswith("\r\033[K")  # and at the end, for the summary

    pipe = io.StringIO()  # the nightly timer's journal: no bar at all
    Progress(pipe)(3, 10, "a/b.flac")
    assert pipe.getvalue() == ""


def test_mpd_lost_mid_scan_is_one_line_and_what_was_heard_is_kept(tmp_path, lib):
    lengthen(lib)
    cfg = config(tmp_path, lib)
    proc = start_scan(cfg)
    wait_for(lambda: len(stickers(lib, "moodbox_file")) >= 1, timeout=120, what="a track heard")
    lib.kill()
    out, err = proc.communicate(timeout=scaled(120))
    lines = err.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, (proc.returncode, err)
    assert f"lost MPD at 127.0.0.1:{lib.port}" in lines[0] and "kept" in lines[0]
    lib.start()  # the same database and sticker file
    assert len(stickers(lib, "moodbox_file")) >= 1


def test_tags_another_tool_spoiled_are_heard_again(tmp_path, lib):
    cfg = config(tmp_path, lib)
    assert scan(cfg).returncode == 0
    c = mpd.MPDClient()
    c.connect("127.0.0.1", lib.port)
    c.sticker_set("song", "tones/tone0.ogg", "moodbox_tags", '{"rock": "loud"}')
    c.disconnect()
    again = scan(cfg)
    assert again.returncode == 0 and "1 heard now, 6 unchanged" in again.stdout, again.stdout + again.stderr
    assert all(isinstance(v, float) for v in stickers(lib, "moodbox_tags")["tones/tone0.ogg"].values())
