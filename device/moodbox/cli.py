"""The ``moodbox`` command line (README, "The moodbox command").

Exit codes: 0 success; 1 an input (image, video, camera) cannot be read; 2 the configuration is wrong
(a bad config file, a missing or unusable model, a bad argument); 130 interrupted (Ctrl-C) where that
is not the command's normal way to stop. No input a user can type or pipe ends in a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

from moodbox import __version__
from moodbox.config import Config
from moodbox.configfile import ConfigError, load_checked
from moodbox.logsetup import setup_logging

log = logging.getLogger("moodbox")

EXIT_OK, EXIT_INPUT, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 130
LIVE_SOURCE = re.compile(r"^(picamera2|\d+|(rtsp|rtsps|http|https)://.*)$")


def _setup_logging(level: str) -> None:
    setup_logging(level)


def _config(path: str | None) -> Config:
    """Every command reads its config through the check ``check-config`` makes: one rule for all."""
    return load_checked(path)


def _missing_path(arg: str, what: str) -> str | None:
    """Why a path argument cannot be used, naming the argument (not camera.source), or None."""
    if LIVE_SOURCE.match(arg) or Path(arg).expanduser().exists():
        return None
    return f"{arg}: no such file or folder ({what} takes a video file, a folder of images, a V4L2 index, picamera2 or an rtsp:// URL)"


def _classifier(cfg: Config):
    from moodbox.vision.emotions import EmotionClassifier

    return EmotionClassifier(cfg.model.path, threads=cfg.model.threads)


def cmd_analyze(args: argparse.Namespace, cfg: Config) -> int:
    import cv2

    from moodbox.vision.faces import FaceDetector, to_gray

    clf = _classifier(cfg)
    detector = FaceDetector(cfg.detection)
    status = EXIT_OK
    for name in args.images:
        path = Path(name)
        if path.is_dir():
            print(f"{path}: is a folder, not an image (name the image files: {path}/*.jpg)", file=sys.stderr)
            status = EXIT_INPUT
            continue
        if not path.is_file():
            print(f"{path}: no such file", file=sys.stderr)
            status = EXIT_INPUT
            continue
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            print(f"{path}: cannot be read as an image", file=sys.stderr)
            status = EXIT_INPUT
            continue
        gray = to_gray(img)
        faces = clf.classify(gray, detector.detect(gray)[: cfg.detection.max_faces])
        if args.json:
            print(json.dumps({"image": str(path), "faces": [f.as_dict() for f in faces]}), flush=True)
        elif not faces:
            print(f"{path}: no face found")
        else:
            for f in faces:
                top = ", ".join(f"{k} {v:.2f}" for k, v in sorted(f.scores.items(), key=lambda kv: -kv[1])[:3])
                print(f"{path}: face at {list(f.box)}: {f.emotion} ({top})")
    return status


def cmd_replay(args: argparse.Namespace, cfg: Config) -> int:
    from moodbox.music.mood import MoodIntent, MoodPolicy
    from moodbox.vision.pipeline import VisionPipeline
    from moodbox.vision.sources import SourceError, open_source

    problem = _missing_path(args.source, "replay")
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_INPUT
    cam = cfg.camera
    realtime = cam.realtime if args.realtime is None else args.realtime
    pipeline = VisionPipeline(cfg, _classifier(cfg))
    # the mood the music would follow, worked out as the daemon does (auto-DJ on, no mood chosen)
    intent = MoodIntent(MoodPolicy.from_config(cfg.music, pipeline.classifier.labels))
    try:
        source = open_source(
            args.source,
            width=cam.width,
            height=cam.height,
            fps=cam.fps,
            realtime=realtime,
            folder_fps=args.folder_fps or cam.folder_fps,
            loop=False,
            retry_s=cam.retry_s,
            retry_max_s=cam.retry_max_s,
        )
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    frames = 0
    next_status = 0.0
    try:
        for frame in source.frames():
            if frame is None:  # (only a source asked for ticks yields None)
                continue
            result = pipeline.process(frame)
            frames += 1
            sm = result.smoothed
            intent.see(sm.emotion)
            plan = intent.plan()
            mood = plan.mood if sm.emotion and plan else None
            if args.json:
                print(json.dumps(result.as_dict(mood)), flush=True)
                continue
            if sm.changed:
                label = f"{sm.emotion} ({sm.confidence:.2f}), mood {mood}" if sm.emotion else "no face"
                print(f"t={result.t:7.2f}s  stable emotion -> {label}", flush=True)
            elif result.t >= next_status:  # a heartbeat, so a quiet scene still shows it is working
                seen = ", ".join(f"{f.emotion} {f.confidence:.2f}" for f in result.faces) or "none"
                print(f"t={result.t:7.2f}s  faces: {seen}; stable: {sm.emotion or '-'}", flush=True)
            if result.t >= next_status:
                next_status = result.t + 1.0
    except KeyboardInterrupt:
        pass
    finally:
        source.close()
    if not args.json:
        print(f"{frames} frames from {source.name}", file=sys.stderr)
    return EXIT_OK


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        _config(args.file)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        return EXIT_CONFIG
    print(f"{args.file}: valid")
    return EXIT_OK


def cmd_discovery(args: argparse.Namespace, cfg: Config) -> int:
    from moodbox.home import REMOVAL_SETTLE_S, discovery_messages, publish_once, removal_messages, state_removal_messages
    from moodbox.vision.emotions import DEFAULT_MODEL, ModelMeta

    moods = cfg.music.moods()
    try:
        if args.remove:
            # the configs (old and new ids) first; the retained state and availability only once Home
            # Assistant has dropped the entities, or their templates render the empty state as errors
            publish_once(cfg.mqtt, removal_messages(cfg.mqtt, moods))
            time.sleep(REMOVAL_SETTLE_S)
            publish_once(cfg.mqtt, state_removal_messages(cfg.mqtt))
        else:
            # the emotion sensor's options are the configured model's labels, as the daemon announces them
            labels = ModelMeta.load(Path(cfg.model.path or DEFAULT_MODEL).with_suffix(".json")).labels
            msgs = discovery_messages(cfg.mqtt, moods, cfg.music.max_volume, list(labels), cfg.group.part())
            publish_once(cfg.mqtt, msgs)
    except ConnectionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    t = f"{cfg.mqtt.base_topic}/{cfg.mqtt.device_id}"
    if args.remove:
        print(
            f"removed the Home Assistant discovery configs under {cfg.mqtt.discovery_prefix}/+/moodbox_{cfg.mqtt.device_id}/ "
            f"(and {cfg.mqtt.discovery_prefix}/+/{cfg.mqtt.device_id}/), and the retained {t}/state and {t}/availability"
        )
    else:
        print(
            f"published {len(msgs)} Home Assistant discovery configs under {cfg.mqtt.discovery_prefix}/+/moodbox_{cfg.mqtt.device_id}/"
        )
    return EXIT_OK


def cmd_run(args: argparse.Namespace, cfg: Config) -> int:
    from moodbox.service import Service

    return Service(cfg, args.config).run()


def cmd_bench(args: argparse.Namespace, cfg: Config) -> int:
    from moodbox import bench
    from moodbox.vision.sources import SourceError

    problem = _missing_path(args.source, "bench --source") if args.source else None
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_INPUT
    try:
        report = bench.run(cfg, args.source, args.frames, args.live_seconds, not args.no_agreement)
    except (SourceError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    print(json.dumps(report.as_dict()) if args.json else report.text())
    return EXIT_OK


def cmd_library(args: argparse.Namespace, cfg: Config) -> int:
    from moodbox.library.command import scan  # the tagger is loaded by this command alone

    return scan(cfg)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="moodbox", description="Reads the room's mood from a camera and plays music to fit.")
    p.add_argument("--version", action="version", version=f"moodbox {__version__}")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="overrides logging.level")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--config", "-c", help="config file (default: /etc/moodbox/config.yaml if present, else built-in defaults)"
        )

    sp = sub.add_parser("run", help="the daemon")
    with_config(sp)
    sp = sub.add_parser("analyze", help="faces and emotion scores of still images")
    sp.add_argument("images", nargs="+", metavar="IMAGE")
    sp.add_argument("--json", action="store_true", help="one JSON object per image")
    with_config(sp)
    sp = sub.add_parser("replay", help="the vision pipeline and smoother on a video file, image folder or camera")
    sp.add_argument(
        "source", metavar="SOURCE", help="a video file, a folder of images, a V4L2 index, picamera2 or an rtsp:// URL"
    )
    sp.add_argument("--json", action="store_true", help="one JSON object per processed frame")
    sp.add_argument(
        "--realtime",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="pace files at their own rate (default: camera.realtime)",
    )
    sp.add_argument("--folder-fps", type=float, help="image folders: frames per second (default: camera.folder_fps)")
    with_config(sp)
    sp = sub.add_parser("bench", help="per-stage latency, frames/s, memory and live CPU share")
    sp.add_argument("--source", help="a video file or folder of images (default: the bundled sample clip)")
    sp.add_argument("--json", action="store_true", help="one JSON object")
    sp.add_argument("--frames", type=int, help="use at most this many frames")
    sp.add_argument("--live-seconds", type=float, default=10.0, help="seconds of each live-mode CPU measurement (0 skips it)")
    sp.add_argument("--no-agreement", action="store_true", help="skip the comparison with a full-resolution Haar pass")
    with_config(sp)
    sp = sub.add_parser("discovery", help="publish (or --remove) the Home Assistant discovery configs")
    sp.add_argument("--remove", action="store_true", help="clear the retained configs so no ghost entities remain")
    with_config(sp)
    sp = sub.add_parser("library", help="the music library: scan hears every track and stores its moods in MPD")
    sp.add_argument("action", choices=["scan"], help="scan: analyse new and changed tracks (low priority; Ctrl-C resumes later)")
    with_config(sp)
    sp = sub.add_parser("check-config", help="validate a config file and print every error")
    sp.add_argument("file", metavar="FILE")
    return p


def _first_interrupt(signum: int, frame: object) -> None:
    """Ctrl-C: the command stops and cleans up; a second Ctrl-C during that clean-up ends the process at
    once, quietly (the default action), instead of a KeyboardInterrupt traceback from wherever it lands."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """The console script: a command's exit code, never a traceback for a user's input, a closed pipe
    (``moodbox replay clip.mp4 --json | head``) or Ctrl-C (once or twice)."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when a parent made us ignore it
        signal.signal(signal.SIGINT, _first_interrupt)
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader (head, less) has what it wanted; point stdout at /dev/null so that the interpreter's
        # final flush does not fail again at exit
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check-config":
        _setup_logging(args.log_level or "WARNING")
        return cmd_check_config(args)
    try:
        cfg = _config(args.config)
    except ConfigError as exc:
        _setup_logging("WARNING")
        print(exc.report(), file=sys.stderr)
        return EXIT_CONFIG
    # one-shot commands print their results; their INFO lines (model loaded, ...) are for the daemon's log
    _setup_logging(args.log_level or (cfg.logging.level if args.command == "run" else "WARNING"))
    from moodbox.vision.emotions import ModelError

    if args.command in ("analyze", "replay"):  # (the daemon and bench set their own)
        from moodbox.vision.faces import use_threads

        use_threads(cfg.detection.threads)

    handlers: dict[str, Any] = {
        "analyze": cmd_analyze,
        "replay": cmd_replay,
        "run": cmd_run,
        "bench": cmd_bench,
        "discovery": cmd_discovery,
        "library": cmd_library,
    }
    try:
        return handlers[args.command](args, cfg)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
