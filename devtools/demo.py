"""The README's first command: moodbox at work with private servers, on a fresh machine.

Starts a private mosquitto and mpd (in a temporary folder, loopback, free ports) with a small generated
music library, runs ``moodbox run`` on a scripted face clip (or a camera, or any source), and prints the
emotions, moods, songs and MQTT state as they change. Ctrl-C stops everything it started.

Scripted clips are FER2013 faces upscaled onto a larger canvas in a known emotion timeline; they are
built in the temporary folder (FER2013 is research data and never committed) when ``../shared`` has it,
otherwise the bundled public-domain clip is used.

The demo is silent: its MPD plays into a ``null`` output, so it runs anywhere (CI, a server over SSH).
``--sound`` plays through this machine's speakers instead (PulseAudio/PipeWire, else ALSA); the
generated tracks are plain tones, a different pitch for each song.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from devtools.clips import Segment, write_clip
from moodbox.config import DEFAULT_QUERIES, MOODS

ROOT = Path(__file__).resolve().parents[1]  # the checkout: the demo is a developer tool
SAMPLE_CLIP = ROOT / "samples" / "short_hamilton_clip.mp4"


def demo_library(root: Path, seconds: float) -> tuple[Path, Path]:
    """Three tagged tracks per mood; playlists for some moods, tag queries serve the others."""
    from devtools.servers import make_library, write_m3u

    tracks = []
    for mood in MOODS:
        genre = DEFAULT_QUERIES[mood]["genre"].split("|")[0]
        for i in range(1, 4):
            tracks.append(
                {
                    "file": f"{mood}/{mood}_{i}.ogg",
                    "artist": f"The {mood.title()} Band",
                    "title": f"{mood.title()} song {i}",
                    "genre": genre,
                }
            )
    music, playlists = make_library(root, tracks, seconds=seconds)
    for mood in ("happy", "sad", "neutral"):
        write_m3u(playlists, f"mood_{mood}", [t["file"] for t in tracks if t["file"].startswith(mood + "/")])
    return music, playlists


def sound_output(choice: str) -> str:
    """MPD's output plugin for ``--sound``: ``auto`` picks the desktop's sound server when it runs."""
    if choice != "auto":
        return choice
    runtime = Path(os.environ.get("XDG_RUNTIME_DIR", f"/run/user/{os.getuid()}"))
    if (runtime / "pulse" / "native").exists() or os.environ.get("PULSE_SERVER"):
        return "pulse"  # PipeWire's pulse server too
    return "alsa"


def _emotion(state: dict) -> str:
    """The stable emotion and its confidence as the daemon's log writes them (the mean score over the window)."""
    emotion, confidence = state.get("emotion"), state.get("confidence")
    if not emotion:
        return "-"
    return f"{emotion} ({confidence:.2f})" if isinstance(confidence, (int, float)) else emotion


def _watch_state(port: int, topic: str, stop: threading.Event) -> None:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    last: dict[str, object] = {}

    def on_message(client, userdata, msg) -> None:
        if msg.topic.endswith("/availability"):
            print(f"[mqtt] availability: {msg.payload.decode()}", flush=True)
            return
        try:
            s = json.loads(msg.payload)
        except ValueError:
            return
        keys = ("emotion", "mood", "playlist", "auto_dj", "privacy", "status")
        view = {k: s.get(k) for k in keys}
        song = s.get("song") or {}
        view["song"] = song.get("title")
        if view != last:
            last.clear()
            last.update(view)
            print(
                f"[mqtt] state: emotion={_emotion(s)} mood={s.get('mood') or '-'} "
                f"song={view['song']!r} from {s.get('playlist')} | fps={s.get('fps')} "
                f"inference={s.get('inference_ms')} ms | {s.get('status')}",
                flush=True,
            )

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="moodbox-demo-viewer")
    c.on_message = on_message
    c.on_connect = lambda cl, u, f, rc, p: cl.subscribe([(f"{topic}/state", 0), (f"{topic}/availability", 0)])
    c.connect("127.0.0.1", port)
    c.loop_start()
    stop.wait()
    c.disconnect()
    c.loop_stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "source",
        nargs="?",
        help="a camera index (0), video file or image folder (default: a scripted face clip, else the sample clip)",
    )
    p.add_argument("--camera", action="store_true", help="use the first USB camera (same as source 0)")
    p.add_argument("--shared", type=Path, default=Path(os.environ.get("MOODBOX_SHARED", ROOT.parent / "shared")))
    p.add_argument("--duration", type=float, default=0, help="stop by itself after this many seconds (0: run until Ctrl-C)")
    p.add_argument("--track-seconds", type=float, default=8.0, help="length of the generated tracks")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, config) afterwards")
    p.add_argument(
        "--sound",
        nargs="?",
        const="auto",
        choices=["auto", "pulse", "pipewire", "alsa"],
        help="play through this machine's speakers (default output: auto; without --sound the demo is silent)",
    )
    args = p.parse_args(argv)

    from devtools.servers import Mosquitto, Mpd

    tmp = Path(tempfile.mkdtemp(prefix="moodbox-demo-"))
    print(f"demo: working in {tmp}", flush=True)
    started: list = []
    daemon: subprocess.Popen | None = None
    stop = threading.Event()
    try:
        music, playlists = demo_library(tmp / "library", args.track_seconds)
        output = sound_output(args.sound) if args.sound else "null"
        mpd = Mpd(tmp / "mpd", music, playlists, output=output)
        mpd.start()
        started.append(mpd)
        broker = Mosquitto(tmp / "mosquitto")
        broker.start()
        started.append(broker)
        print(f"demo: private mpd on 127.0.0.1:{mpd.port}, mosquitto on 127.0.0.1:{broker.port}", flush=True)
        print(
            "demo: library: three tagged tones per mood; playlists for happy, sad and neutral, the other moods\n"
            "      come from their tag queries (the log warns once that their playlist is missing: expected)",
            flush=True,
        )
        if output == "null":
            print(
                "demo: silent: mpd plays into its null output (scripts/demo --sound plays the tones it picks aloud)", flush=True
            )
        else:
            print(f"demo: playing through mpd's {output} output (its log: {mpd.log}); the songs are plain tones", flush=True)

        camera: dict[str, object] = {"realtime": True, "loop": True, "retry_s": 1.0}
        fer_val = args.shared / "data" / "fer2013" / "val"
        if args.camera or args.source == "0":
            camera["source"] = "0"
            print("demo: source: the first USB camera", flush=True)
        elif args.source:
            camera["source"] = str(Path(args.source).resolve())
        elif fer_val.is_dir():
            timeline = [
                Segment("neutral", 10),
                Segment("happy", 15),
                Segment("sad", 15),
                Segment("surprise", 15),
                Segment("happy", 15),
            ]
            write_clip(fer_val, timeline, tmp / "clip", fps=5.0)
            camera.update(source=str(tmp / "clip"), folder_fps=5.0)
            print(
                "demo: source: a scripted clip of FER2013 faces: "
                + ", ".join(f"{s.emotion} {s.seconds:.0f} s" for s in timeline)
                + " (looping)",
                flush=True,
            )
        else:
            camera["source"] = str(SAMPLE_CLIP)
            print(
                f"demo: source: {SAMPLE_CLIP.name}, 9 s of film, looping (FER2013 not found at {fer_val} for a scripted clip)",
                flush=True,
            )
            print(
                "demo: its faces are small, turned and lit for the screen, so the model is unsure of them: expect the\n"
                "      stable emotion to change every few seconds (happy, sad, fear, angry) at 0.3-0.6. A\n"
                "      listener facing the camera, or the scripted FER2013 clip, reads far more clearly.",
                flush=True,
            )

        cfg = {
            "camera": camera,
            "music": {"mpd": {"host": "127.0.0.1", "port": mpd.port}, "state_dir": str(tmp / "state"), "crossfade_s": 1},
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "device_id": "demo"},
        }
        cfg_path = tmp / "moodbox.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        watcher = threading.Thread(target=_watch_state, args=(broker.port, "moodbox/demo", stop), daemon=True)
        watcher.start()
        print(
            "demo: the figure after an emotion is its confidence: its mean score over the last "
            "smoothing.window_s, the same in the log's\n      'stable emotion' line and in MQTT; the music changes "
            "mood at the end of the current song",
            flush=True,
        )
        print("demo: starting moodbox run (Ctrl-C stops everything)\n", flush=True)
        daemon = subprocess.Popen([sys.executable, "-m", "moodbox", "run", "--config", str(cfg_path)])
        deadline = time.monotonic() + args.duration if args.duration else None
        while daemon.poll() is None:
            if deadline and time.monotonic() > deadline:
                break
            time.sleep(0.2)
        return 0 if daemon.poll() in (None, 0) else int(daemon.returncode or 1)
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if daemon is not None and daemon.poll() is None:
            daemon.terminate()
            try:
                daemon.wait(5)
            except subprocess.TimeoutExpired:
                daemon.kill()
        stop.set()
        for s in reversed(started):
            s.stop()
        if args.keep:
            print(f"demo: kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        print("demo: stopped everything it started", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
