"""Three boxes on one LAN made of network namespaces (tests/netns.py): a leader (living) and two
followers (kitchen, bedroom), each with its own real mpd and `moodbox run` on its own clip, a real
mosquitto on the hub, a real snapserver on the leader and a real snapclient on each follower writing what
it would play to a file (``--player file``). Nothing is routed beyond those namespaces; they are removed
at the end.

Checked: every follower plays the leader's stream, the followers in step (their outputs cross-correlated,
the offset quoted), the house mood counts the rooms as docs/multiroom.md says and privacy removes one, a
killed leader leaves each follower playing its own music within the bounded wait, and the group re-forms
when the leader is back. The figures are printed (`-s`) for the closing note; only the issue's targets are
asserted, never a speed beyond them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import mpd
import numpy as np
import pytest
import yaml

from devtools.servers import Mpd, make_library, write_m3u
from moodbox.house import RoomReport, combine
from tests import netns
from tests.mqtt_helpers import Recorder
from tests.util import wait_for

pytestmark = pytest.mark.skipif(
    (why := netns.why_not()) is not None or not all(map(__import__("shutil").which, ("snapserver", "snapclient"))),
    reason=f"multi-host test: {why or 'snapserver/snapclient not installed (scripts/setup installs them)'}",
)

RATE = 48000  # snapserver's sample format 48000:16:2: 4 bytes a frame
FRAME = 4
TRACKS = [
    {"file": f"{g.lower()}/{g.lower()}{i}.ogg", "artist": f"{g} Band", "title": f"{g} {i}", "genre": g}
    for g in ("Pop", "Jazz", "Ambient", "Blues")
    for i in range(1, 4)
]
MQTT_PORT = 1883


def _wait_port(lan: netns.Lan, host: str, addr: str, port: int, timeout: float = 15.0) -> None:
    def probe() -> bool:
        try:
            socket.create_connection((addr, port), timeout=0.5).close()
            return True
        except OSError:
            return False

    wait_for(lambda: lan.call(host, probe), timeout=timeout, what=f"{host} {addr}:{port}")


class Room:
    """One box: its namespace's mpd (+ snapserver on the leader, + snapclient on a follower) and daemon."""

    def __init__(self, lan: netns.Lan, tmp: Path, name: str, source: Path, group: dict, library: tuple[Path, Path]) -> None:
        self.lan, self.name, self.dir = lan, name, tmp / name
        self.dir.mkdir()
        self.addr = lan.add(name)
        self.leads = group.get("role", "leader") == "leader"
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        self.fifo = self.dir / "snapfifo"
        self.out = self.dir / "snapclient.raw"
        # its own MPD (the project's test server, started here inside the box's namespace)
        self.server = Mpd(self.dir / "mpd", *library, fifo=self.fifo if self.leads else None)
        cfg = {
            "camera": {"source": str(source), "realtime": True, "loop": True, "folder_fps": 10, "retry_s": 0.5},
            "music": {
                "mpd": {"host": "127.0.0.1", "port": self.server.port},
                "state_dir": str(self.dir / "state"),
                "crossfade_s": 0,
            },
            "mqtt": {
                "host": lan.addresses["hub"],
                "port": MQTT_PORT,
                "device_id": name,
                "state_min_interval_s": 0.2,
                "state_interval_s": 2,
            },
            "group": {"name": "house", **group},
        }
        (self.dir / "moodbox.yaml").write_text(yaml.safe_dump(cfg))

    def _start(self, what: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.logs[what] = log = self.dir / f"{what}.log"
        with log.open("ab") as fh:
            self.procs[what] = self.lan.popen(self.name, argv, fh, env=env)

    def start_servers(self) -> None:
        if self.leads:
            # its own config file, as the Ansible role writes one: with none, snapserver reads
            # /etc/snapserver.conf and adds its default stream, where new clients would listen to silence
            conf = self.dir / "snapserver.conf"
            conf.write_text(
                f"[server]\ndatadir = {self.dir}\n[http]\nenabled = false\n[tcp]\nbind_to_address = 127.0.0.1\n"
                f"[stream]\nbind_to_address = {self.addr}\nsource = pipe://{self.fifo}?name=moodbox&sampleformat=48000:16:2\n"
                "[logging]\nsink = stderr\n"
            )
            self._start("snapserver", ["snapserver", "-c", str(conf)], env={**os.environ, "HOME": str(self.dir)})
            _wait_port(self.lan, self.name, self.addr, 1704)
        self.server.write_config()
        self._start("mpd", self.server.command())
        _wait_port(self.lan, self.name, "127.0.0.1", self.server.port)
        c = self.mpd()
        c.update()
        wait_for(lambda: "updating_db" not in c.status(), timeout=15, what=f"{self.name}'s MPD database")

    def start_snapclient(self, leader: Room) -> None:
        self._start(
            "snapclient",
            [
                "snapclient",
                "-h",
                leader.addr,
                "-p",
                "1704",
                f"--hostID={self.name}",
                f"--player=file:filename={self.out}",
                "--logsink=stderr",
            ],
        )

    def start_daemon(self) -> None:
        self._start("moodbox", [sys.executable, "-m", "moodbox", "run", "--config", str(self.dir / "moodbox.yaml")])

    def mpd(self) -> mpd.MPDClient:
        def connect() -> mpd.MPDClient:
            c = mpd.MPDClient()
            c.timeout = 5
            c.connect("127.0.0.1", self.server.port)
            return c

        return self.lan.call(self.name, connect)

    def kill(self, *which: str) -> None:
        for what in which or list(self.procs):
            p = self.procs.get(what)
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait(5)

    def snapserver_clients(self) -> dict[str, bool]:
        """The leader's snapserver's own account (its JSON-RPC on the leader's loopback): client -> connected."""

        def ask() -> dict[str, bool]:
            with socket.create_connection(("127.0.0.1", 1705), timeout=2) as s:
                s.sendall(b'{"id":1,"jsonrpc":"2.0","method":"Server.GetStatus"}\r\n')
                buf = b""
                while not buf.endswith(b"\n"):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
            server = json.loads(buf)["result"]["server"]
            return {c["id"]: c["connected"] for g in server["groups"] for c in g["clients"]}  # id: the --hostID

        try:
            return self.lan.call(self.name, ask)
        except (OSError, ValueError, KeyError):
            return {}

    def tracebacks(self) -> list[str]:
        return [f"{self.name}/{what}" for what, log in self.logs.items() if "Traceback" in log.read_text(errors="replace")]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Growth:
    """Each file's size, watched every millisecond: when a player writes a chunk, and how far it is then
    (the wall-clock time of its first sample, robustly: the median over every chunk)."""

    def __init__(self, paths: list[Path], seconds: float) -> None:
        self.events: dict[Path, list[tuple[float, int]]] = {p: [] for p in paths}
        end = time.monotonic() + seconds
        last = {p: -1 for p in paths}
        while time.monotonic() < end:
            for p in paths:
                size = p.stat().st_size
                if size != last[p]:
                    last[p] = size
                    self.events[p].append((time.monotonic(), size))
            time.sleep(0.0005)

    def start_time(self, path: Path) -> float:
        ev = self.events[path][1:]  # the first is only when watching began
        return statistics.median(t - size / (RATE * FRAME) for t, size in ev)


def mono(path: Path) -> np.ndarray:
    raw = np.frombuffer(path.read_bytes(), dtype="<i2")
    return raw[: len(raw) // 2 * 2].reshape(-1, 2)[:, 0].astype(np.float64)


def align(a: np.ndarray, b: np.ndarray, at: int, n: int = RATE) -> tuple[int, float]:
    """Where ``a[at:at+n]`` is in ``b`` (sample index) and how alike they are there (correlation, 0..1)."""
    w = a[at : at + n] - a[at : at + n].mean()
    size = 1 << int(np.ceil(np.log2(len(b) + n)))
    corr = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(w, size)), size)[: len(b) - n]
    j = int(np.argmax(corr))
    seg = b[j : j + n] - b[j : j + n].mean()
    return j, float(np.dot(w, seg) / (np.linalg.norm(w) * np.linalg.norm(seg) + 1e-9))


def onsets(x: np.ndarray) -> list[int]:
    """Sample indices where a track starts: the 5 ms loudness rises out of quiet (the tracks' noise is
    faded in and out over 50 ms; between two tracks the leader may also send a moment of silence)."""
    hop = RATE // 200
    rms = np.sqrt(np.mean(x[: len(x) // hop * hop].reshape(-1, hop) ** 2, axis=1))
    loud = np.median(rms[rms > 0]) if np.any(rms > 0) else 0.0
    quiet = rms < 0.1 * loud
    return [i * hop for i in range(1, len(rms)) if quiet[i - 1] and not quiet[i] and loud > 0]


def dropouts(x: np.ndarray, since: int) -> int:
    """Chunks of digital silence (50 ms of zeros) after ``since``: moments a player had nothing to play."""
    chunk = RATE // 20
    frames = x[since : since + (len(x) - since) // chunk * chunk].reshape(-1, chunk)
    return int(np.sum(~frames.any(axis=1)))


def test_three_boxes_in_network_namespaces_play_in_step_and_fall_back_and_rejoin(tmp_path, astronaut_png, hamilton_clip):
    lib = make_library(tmp_path / "lib", TRACKS, seconds=4.0, noise=True)
    write_m3u(lib[1], "mood_happy", [t["file"] for t in TRACKS if t["genre"] == "Pop"])
    write_m3u(lib[1], "mood_neutral", [t["file"] for t in TRACKS if t["genre"] == "Jazz"])
    one, three = tmp_path / "one_face", tmp_path / "three_faces"
    one.mkdir()
    three.mkdir()
    img = cv2.imread(str(astronaut_png))
    for i in range(10):
        cv2.imwrite(str(one / f"{i:03d}.jpg"), img)
        cv2.imwrite(str(three / f"{i:03d}.jpg"), cv2.hconcat([img, img, img]))
    lan = netns.Lan()
    rooms: dict[str, Room] = {}
    rec: Recorder | None = None
    broker: subprocess.Popen | None = None
    figures: dict[str, object] = {}
    try:
        (tmp_path / "mq").mkdir()
        (tmp_path / "mq" / "mosquitto.conf").write_text(
            f"listener {MQTT_PORT} {lan.addresses['hub']}\nallow_anonymous true\npersistence false\nlog_dest stderr\nuser root\n"
        )
        with (tmp_path / "mq" / "log").open("ab") as fh:
            broker = lan.popen("hub", ["mosquitto", "-c", str(tmp_path / "mq" / "mosquitto.conf")], fh)
        rooms["living"] = Room(
            lan, tmp_path, "living", one, {"role": "leader", "members": ["kitchen", "bedroom"], "stale_s": 6}, lib
        )
        rooms["kitchen"] = Room(lan, tmp_path, "kitchen", three, {"role": "follower", "leader": "living"}, lib)
        rooms["bedroom"] = Room(lan, tmp_path, "bedroom", hamilton_clip, {"role": "follower", "leader": "living"}, lib)
        living, kitchen, bedroom = rooms["living"], rooms["kitchen"], rooms["bedroom"]
        followers = [kitchen, bedroom]
        for name in lan.hosts:  # nothing is routed beyond the LAN the test made
            routes = subprocess.run(["ip", "-n", lan.ns(name), "route"], capture_output=True, text=True).stdout
            assert "default" not in routes and all(line.startswith(lan.prefix) for line in routes.splitlines())
        _wait_port(lan, "hub", lan.addresses["hub"], MQTT_PORT)
        rec = lan.call("hub", lambda: Recorder(MQTT_PORT, host=lan.addresses["hub"]))

        def state(room: str) -> dict:
            last = rec.last(f"moodbox/{room}/state") if rec else None
            return json.loads(last) if last else {}

        for r in rooms.values():
            r.start_servers()
        for f in followers:
            f.start_snapclient(living)
        for r in rooms.values():
            r.start_daemon()
        clients = {f: f.mpd() for f in followers}

        # the group forms: the leader plays; each follower's speaker is the leader's stream, its MPD stopped
        wait_for(lambda: state("living").get("music") == "PLAYING", timeout=60, what="the leader's music")
        for f in followers:
            wait_for(lambda: state(f.name).get("group", {}).get("why") == "leader", timeout=30, what=f"{f.name} following")
            assert clients[f].status()["state"] == "stop"
        wait_for(lambda: living.snapserver_clients() == {"kitchen": True, "bedroom": True}, timeout=20, what="both snapclients")

        # in step: when each player's first sample is due, and where the same sound lies in each output
        time.sleep(3)
        cpu0 = {f: cpu_seconds(f.procs["snapclient"].pid) for f in followers}
        t_cpu = time.monotonic()
        growth = Growth([kitchen.out, bedroom.out], seconds=8.0)
        snapclient_cpu = {
            f.name: 100 * (cpu_seconds(f.procs["snapclient"].pid) - cpu0[f]) / (time.monotonic() - t_cpu) for f in followers
        }
        a, b = mono(kitchen.out), mono(bedroom.out)
        at = len(a) - 3 * RATE
        for name, x in (("kitchen", a), ("bedroom", b)):
            assert np.sqrt(np.mean(x[-3 * RATE :] ** 2)) > 100, f"the {name}'s snapclient plays silence"
        j, likeness = align(a, b, at)
        assert likeness > 0.9, f"the followers do not play the same stream (correlation {likeness:.2f})"
        t_a, t_b = growth.start_time(kitchen.out), growth.start_time(bedroom.out)
        offset_ms = 1000 * ((t_a + at / RATE) - (t_b + j / RATE))
        starts_a = [t_a + i / RATE for i in onsets(a)]
        starts_b = [t_b + i / RATE for i in onsets(b)]
        # each start in the watched stretch beside the same start in the other output (the nearest within
        # 1 s: a gap only one player had is not a track's start in the other)
        watched = t_a + (len(a) - 8 * RATE) / RATE
        nearest = [min((abs(s - u) for u in starts_b), default=float("inf")) for s in starts_a if s >= watched]
        track_ms = [1000 * d for d in nearest if d < 1.0]
        figures.update(
            offset_ms=round(offset_ms, 2),
            track_start_ms=[round(x, 1) for x in track_ms],
            dropouts={"kitchen": dropouts(a, len(a) - 8 * RATE), "bedroom": dropouts(b, len(b) - 8 * RATE)},
            snapclient_cpu={k: round(v, 2) for k, v in snapclient_cpu.items()},
        )
        assert abs(offset_ms) <= 5.0, figures
        assert track_ms and max(track_ms) <= 50.0, figures

        # the house mood: every room counts as its own state says; the leader's pick is the faces-weighted one
        def consistent() -> bool:
            house = state("living").get("house") or {}
            reports = [RoomReport.from_state(r, state(r), 0.0, True) for r in rooms]
            expected = combine(reports, 6.0, house.get("emotion"), 0.1)
            return (
                bool(house.get("emotion")) and house.get("rooms") == expected.rooms and house.get("emotion") == expected.emotion
            )

        wait_for(consistent, timeout=30, what="the house mood made of the three rooms")
        assert state("living")["house"]["rooms"]["kitchen"] == {
            "counts": True,
            "faces": 3,
            "emotion": state("kitchen")["emotion"],
        }
        rec.publish("moodbox/kitchen/privacy/set", "ON")
        wait_for(
            lambda: (state("living").get("house") or {}).get("rooms", {}).get("kitchen") == {"counts": False, "why": "privacy"},
            timeout=15,
            what="privacy in the kitchen to remove it from the house",
        )
        rec.publish("moodbox/kitchen/privacy/set", "OFF")

        # the leader lost (its box gone): each follower plays its own music within the bounded wait
        t_kill = time.monotonic()
        living.kill("moodbox", "mpd", "snapserver")
        lost: dict[str, float] = {}

        def own_music() -> bool:
            for f in followers:
                if f.name not in lost and clients[f].status()["state"] == "play":
                    lost[f.name] = time.monotonic() - t_kill
            return len(lost) == len(followers)

        wait_for(own_music, timeout=30, what="the followers to play their own music")
        for f in followers:  # the state follows the player's switch within a moment (seen 'group' under load)
            wait_for(lambda f=f: state(f.name)["group"]["playing"] == "own", timeout=5, what=f"{f.name}'s state to say own")
        # its own room's music: the kitchen's three happy faces, happy music (Pop)
        wait_for(
            lambda: clients[kitchen].currentsong().get("file", "").startswith("pop/"),
            timeout=10,
            what="the kitchen's own mood",
        )
        figures["fallback_s"] = {k: round(v, 1) for k, v in lost.items()}
        assert max(lost.values()) <= 15.0, figures

        # the leader back: the group re-forms
        t_back = time.monotonic()
        living.start_servers()
        living.start_daemon()
        back: dict[str, float] = {}

        def reformed() -> bool:
            joined = living.snapserver_clients()
            for f in followers:
                if f.name not in back and clients[f].status()["state"] == "stop" and joined.get(f.name):
                    back[f.name] = time.monotonic() - t_back
            return len(back) == len(followers)

        wait_for(reformed, timeout=40, what="the group to re-form")
        figures["rejoin_s"] = {k: round(v, 1) for k, v in back.items()}
        assert max(back.values()) <= 15.0, figures
        figures["combine_cpu_percent"] = combine_cost([state(r) for r in rooms])
        print(f"\nmulti-room figures: {json.dumps(figures)}")
        assert [p for r in rooms.values() for p in r.tracebacks()] == []
    finally:
        if rec is not None:
            rec.close()
        for r in rooms.values():
            r.kill()
        if broker is not None and broker.poll() is None:
            broker.kill()
        lan.remove()
        left = lan.leftovers()
    assert left == [], f"namespaces left behind: {left}"


def combine_cost(states: list[dict]) -> float:
    """The leader's cost of combining three rooms, in % of one core: one combination per step (4 a second)
    and one per observation (10 a second), timed here on the rooms' real states."""
    from moodbox.rooms import Rooms

    r = Rooms("living", ["kitchen", "bedroom"], 75.0, 0.1)
    for name, s in zip(("kitchen", "bedroom"), states[1:]):
        r.heard(name, "state", json.dumps(s).encode(), time.monotonic())
    n = 2000
    t = time.perf_counter()
    for _ in range(n):
        r.follow(states[0], False, time.monotonic())
    per_call = (time.perf_counter() - t) / n
    return round(100 * per_call * 14, 3)
