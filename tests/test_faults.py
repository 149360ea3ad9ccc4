"""`moodbox run` as a process under bad luck (issue 15): SIGHUP, an emptied image folder."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import threading
import time

import yaml

from tests.box import Box, box_factory, faces_folder, library  # noqa: F401  (fixtures)
from tests.mqtt_helpers import Recorder
from tests.util import scaled, wait_for


def _state(rec: Recorder, topic: str) -> dict:
    last = rec.last(f"{topic}/state")
    return json.loads(last) if last else {}


class NotifySocket:
    """What the daemon tells systemd, recorded from a datagram socket like systemd's."""

    def __init__(self, path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.got: list[str] = []
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._read, daemon=True)
        self._th.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self.got.append(self.sock.recv(4096).decode())
            except TimeoutError:
                pass

    def close(self) -> None:
        self._stop.set()
        self._th.join(1)
        self.sock.close()


def _rewrite(box: Box, **sections) -> None:
    cfg = yaml.safe_load(box.cfg_path.read_text())
    for name, values in sections.items():
        cfg.setdefault(name, {}).update(values)
    box.cfg_path.write_text(yaml.safe_dump(cfg))


def test_sighup_reloads_a_valid_config_and_refuses_a_broken_one(box_factory, faces_folder, tmp_path):
    """Issue 15.3: SIGHUP's default action ended the process, and systemd counts that as a clean stop."""
    notify = NotifySocket(tmp_path / "notify.sock")
    box = box_factory(faces_folder, env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock")})
    rec = Recorder(box.broker.port)
    try:
        box.start()
        wait_for(lambda: rec.last("moodbox/boxtest/availability") == b"online", timeout=15, what="online")
        wait_for(lambda: any("READY=1" in g for g in notify.got), what="READY")
        _rewrite(box, mqtt={"device_id": "reloaded"})
        n_notes = len(notify.got)
        box.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: rec.last("moodbox/reloaded/availability") == b"online", timeout=15, what="the new device id online")
        wait_for(lambda: _state(rec, "moodbox/reloaded").get("status") == "ok", timeout=10, what="frames with the new config")
        assert box.proc.poll() is None
        assert rec.last("moodbox/boxtest/availability") == b"offline"
        # READY=1 may reach the socket a moment after the new state reaches MQTT (slow machines)
        wait_for(lambda: any("READY=1" in g for g in notify.got[n_notes:]), what="READY after the reload")
        after = notify.got[n_notes:]
        assert any(g.startswith("RELOADING=1") for g in after) and any("READY=1" in g for g in after), after
        assert not any("STOPPING=1" in g for g in after), "STOPPING=1 would start systemd's stop timeout"

        box.cfg_path.write_text("camera: {fsp: 3}\nmqtt: {port: true}\n")
        rec.clear()
        box.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "config reload refused" in box.log.read_text(), timeout=10, what="the refusal logged")
        log = box.log.read_text()
        assert "camera.fsp: unknown key" in log and "mqtt.port: must be a number" in log and "Traceback" not in log
        time.sleep(1.5)
        assert box.proc.poll() is None and rec.last("moodbox/reloaded/availability") is None  # no restart
        box.proc.send_signal(signal.SIGTERM)
        assert box.proc.wait(scaled(10)) == 0
    finally:
        rec.close()
        notify.close()


def test_emptied_folder_under_the_daemon(box_factory, faces_folder, tmp_path):
    """Issue 15.1 end to end: status says so on MQTT, few log lines, little CPU, frames again after."""
    folder = tmp_path / "cam"
    shutil.copytree(faces_folder, folder)
    box = box_factory(folder, camera={"folder_fps": 10})
    rec = Recorder(box.broker.port)
    try:
        box.start()
        wait_for(lambda: (_state(rec, "moodbox/boxtest").get("fps") or 0) > 0, timeout=15, what="frames")
        away = tmp_path / "away"
        folder.rename(away)
        folder.mkdir()
        wait_for(
            lambda: str(_state(rec, "moodbox/boxtest").get("status", "")).startswith("no images"),
            timeout=5,
            what="the empty folder reported",
        )
        lines0 = len(box.log.read_text().splitlines())
        cpu0, wall0 = _cpu_s(box.proc.pid), time.monotonic()
        time.sleep(5.0)
        cpu, wall = _cpu_s(box.proc.pid) - cpu0, time.monotonic() - wall0
        lines = box.log.read_text().splitlines()[lines0:]
        assert cpu < 0.05 * wall, f"{cpu:.2f} CPU s in {wall:.1f} s while the folder was empty"
        assert len(lines) <= 5, lines
        for f in away.iterdir():
            shutil.copy(f, folder / f.name)
        t0 = time.monotonic()
        rec.clear()
        wait_for(lambda: _state(rec, "moodbox/boxtest").get("status") == "ok", timeout=5, what="frames again within 5 s")
        assert time.monotonic() - t0 <= scaled(5.0) and box.proc.poll() is None
    finally:
        rec.close()


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (Linux)."""
    import os

    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_the_daemon_runs_inside_the_unit_sandbox(box_factory, faces_folder):
    """The unit's system-call filter, MemoryDenyWriteExecute and ProtectProc, imitated by tests/sandbox.py:
    frames, MQTT, MPD, a reload and a clean stop all still work."""
    import subprocess
    import sys

    from tests.test_provisioning import ROOT, _sandbox

    cmd = _sandbox()
    box = box_factory(faces_folder)
    rec = Recorder(box.broker.port)
    try:
        with box.log.open("ab") as fh:
            box.proc = subprocess.Popen(
                [*cmd, sys.executable, "-m", "moodbox", "run", "--config", str(box.cfg_path)],
                stdout=fh,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        wait_for(lambda: (_state(rec, "moodbox/boxtest").get("fps") or 0) > 0, timeout=20, what="frames in the sandbox")
        c = box.mpd_client()
        wait_for(lambda: c.status()["state"] == "play", timeout=10, what="music")
        assert ", XNNPACK delegate" in box.log.read_text()  # LiteRT still uses it in the sandbox
        box.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "restarted with the reloaded config" in box.log.read_text(), timeout=15, what="a reload")
        box.proc.send_signal(signal.SIGTERM)
        assert box.proc.wait(scaled(10)) == 0
        assert "Traceback" not in box.log.read_text()
    finally:
        rec.close()


def test_sigterm_during_a_reload_still_stops(box_factory, faces_folder):
    """A stop right after a reload (systemctl reload && systemctl stop) must not be lost in the restart."""
    box = box_factory(faces_folder)
    rec = Recorder(box.broker.port)
    try:
        box.start()
        wait_for(lambda: rec.last("moodbox/boxtest/availability") == b"online", timeout=15, what="online")
        box.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "restarting the daemon's parts" in box.log.read_text(), timeout=10, what="the reload to begin")
        box.proc.send_signal(signal.SIGTERM)
        assert box.proc.wait(scaled(6)) == 0
    finally:
        rec.close()
