"""Private mpd and mosquitto servers for the demo and the tests: each on a free loopback
port, with its own config in a folder of the caller's, started and stopped by whoever needs it. Also a
sox-made music library with real tags. Not used by the daemon itself."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def _require(binary: str) -> str:
    """The binary's path; a normal user's PATH on Debian lacks /usr/sbin, where mosquitto lives."""
    path = shutil.which(binary) or next((f"{d}/{binary}" for d in ("/usr/sbin", "/sbin") if Path(f"{d}/{binary}").exists()), None)
    if path is None:
        raise RuntimeError(f"{binary} is not installed: run scripts/setup (apt-get install -y mosquitto mpd sox)")
    return path


class _Server:
    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = self.dir / f"{self.name}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self.write_config()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_port(self.port)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"{self.name} did not start: {self.log.read_text()[-2000:]}") from None

    def write_config(self) -> None:
        raise NotImplementedError

    def kill(self) -> None:
        """Die without a goodbye, as a crash would."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def restart(self) -> None:
        self.kill()
        self.start()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class Mpd(_Server):
    name = "mpd"

    OUTPUTS = ("null", "alsa", "pulse", "pipewire")

    def __init__(
        self,
        workdir: Path,
        music: Path,
        playlists: Path,
        password: str | None = None,
        output: str = "null",
        fifo: Path | None = None,
    ) -> None:
        """``output``: MPD's audio output plugin; ``null`` plays silently (tests, CI, a machine without sound).
        ``fifo``: instead, the one output is a FIFO in snapserver's format (a group leader's, docs/multiroom.md)."""
        super().__init__(workdir)
        if output not in self.OUTPUTS:
            raise ValueError(f"MPD output {output!r}: expected one of {', '.join(self.OUTPUTS)}")
        self.music = music
        self.playlists = playlists
        self.password = password
        self.output = output
        self.fifo = fifo

    def write_config(self) -> None:
        d = self.dir
        pw = f'password "{self.password}@read,add,control,admin"\n' if self.password else ""
        (d / "mpd.conf").write_text(
            f'music_directory "{self.music}"\n'
            f'playlist_directory "{self.playlists}"\n'
            f'db_file "{d / "database"}"\n'
            f'state_file "{d / "state"}"\n'
            f'sticker_file "{d / "sticker.sql"}"\n'
            f'bind_to_address "127.0.0.1"\n'
            f'port "{self.port}"\n'
            'auto_update "no"\n'
            'metadata_to_use "+comment"\n'
            'restore_paused "no"\n'
            f"{pw}"
            + (
                f'audio_output {{\n  type "fifo"\n  name "snapcast"\n  path "{self.fifo}"\n  format "48000:16:2"\n'
                '  mixer_type "software"\n}\n'
                if self.fifo
                else f'audio_output {{\n  type "{self.output}"\n  name "{self.output}"\n  mixer_type "software"\n}}\n'
            )
        )

    def command(self) -> list[str]:
        return [_require("mpd"), "--no-daemon", "--stderr", str(self.dir / "mpd.conf")]

    def start(self) -> None:
        super().start()
        self.update_db()

    def update_db(self) -> None:
        from mpd import MPDClient

        c = MPDClient()
        c.connect("127.0.0.1", self.port)
        if self.password:
            c.password(self.password)
        c.update()
        deadline = time.monotonic() + 15
        while "updating_db" in c.status() and time.monotonic() < deadline:
            time.sleep(0.05)
        c.close()
        c.disconnect()


class Mosquitto(_Server):
    name = "mosquitto"

    def __init__(self, workdir: Path, users: dict[str, str] | None = None, tls: dict[str, Path] | None = None) -> None:
        super().__init__(workdir)
        self.users = users
        self.tls = tls  # {"ca": ..., "cert": ..., "key": ..., "require_certificate": bool}

    def write_config(self) -> None:
        import getpass

        # run as whoever runs the tests (as root, mosquitto would switch to its own user and could not read our files)
        lines = [f"listener {self.port} 127.0.0.1", "log_dest stderr", "persistence false", f"user {getpass.getuser()}"]
        if self.tls:
            lines += [f"cafile {self.tls['ca']}", f"certfile {self.tls['cert']}", f"keyfile {self.tls['key']}"]
            if self.tls.get("require_certificate"):
                lines.append("require_certificate true")
        if self.users:
            pwfile = self.dir / "passwd"
            pwfile.write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))
            os.chmod(pwfile, 0o600)
            subprocess.run([_require("mosquitto_passwd"), "-U", str(pwfile)], check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {pwfile}"]
        else:
            lines.append("allow_anonymous true")
        (self.dir / "mosquitto.conf").write_text("\n".join(lines) + "\n")

    def command(self) -> list[str]:
        return [_require("mosquitto"), "-c", str(self.dir / "mosquitto.conf")]


def make_library(root: Path, tracks: list[dict[str, str]], seconds: float = 3.0, noise: bool = False) -> tuple[Path, Path]:
    """Tagged .ogg tracks made by sox under root/music, and root/playlists for .m3u files: each a tone of
    its own pitch, or (``noise``) a burst of noise of its own, faded in and out, which no other stretch of
    the library resembles (two recordings of it can be aligned to the sample)."""
    music, playlists = root / "music", root / "playlists"
    music.mkdir(parents=True, exist_ok=True)
    playlists.mkdir(parents=True, exist_ok=True)
    sox = _require("sox")
    for i, tags in enumerate(tracks):
        path = music / tags["file"]
        path.parent.mkdir(parents=True, exist_ok=True)
        comments: list[str] = []
        for k, v in tags.items():
            if k != "file":
                comments += ["--comment" if not comments else "--add-comment", f"{k.upper()}={v}"]
        freq = 220 + 40 * i
        sound = ["pinknoise", "fade", "t", "0.05", str(seconds), "0.05"] if noise else ["sine", str(freq)]
        subprocess.run([sox, "-n", "-r", "8000", "-c", "1", *comments, str(path), "synth", str(seconds), *sound], check=True)
    return music, playlists


def write_m3u(playlists: Path, name: str, files: list[str]) -> None:
    (playlists / f"{name}.m3u").write_text("".join(f"{f}\n" for f in files))


def make_certificates(folder: Path) -> dict[str, Path]:
    """A throw-away CA, a server certificate for 127.0.0.1/localhost and a client certificate (openssl)."""
    folder.mkdir(parents=True, exist_ok=True)
    openssl = _require("openssl")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=folder)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=moodbox test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    )
    (folder / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name, cn in (("server", "localhost"), ("client", "moodbox")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}", "-keyout", f"{name}.key", "-out", f"{name}.csr")
        extra = ["-extfile", "san.ext"] if name == "server" else []
        run(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            f"{name}.crt",
            *extra,
        )
    return {
        k: folder / v
        for k, v in {
            "ca": "ca.crt",
            "cert": "server.crt",
            "key": "server.key",
            "client_cert": "client.crt",
            "client_key": "client.key",
        }.items()
    }
