"""``moodbox run`` as a service: the daemon, restarted in-process with a new config on SIGHUP.

SIGHUP's default action ends the process, and systemd's ``Restart=on-failure`` counts that as a clean
exit, so the box stopped for good whenever an owner or a tool sent it (``systemctl reload``). Here SIGHUP
re-reads and checks the config file with the same :func:`~moodbox.configfile.load_checked` that
``check-config`` uses: a valid file restarts the daemon's parts with it; an invalid one is logged by key
path and the box keeps running on the old config.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

from moodbox.config import Config
from moodbox.configfile import ConfigError, load_checked
from moodbox.sdnotify import Notifier

log = logging.getLogger(__name__)


class _ReloadNotifier(Notifier):
    """While a reload restarts the daemon, tell systemd RELOADING=1 instead of STOPPING=1 (which would
    start systemd's stop timeout and get the reloaded daemon killed); the new daemon's READY=1 ends it."""

    reloading = False

    def stopping(self) -> None:
        if self.reloading:
            self.notify(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")
        else:
            super().stopping()


class Service:
    """Runs :class:`~moodbox.daemon.Daemon` until SIGTERM/SIGINT, reloading its config on SIGHUP."""

    def __init__(self, cfg: Config, path: str | Path | None) -> None:
        self.cfg = cfg
        self.path = path
        self.notifier = _ReloadNotifier()
        self._hup = threading.Event()
        self._quit = threading.Event()
        self._daemon: Any = None
        self._next: Config | None = None
        self._lock = threading.Lock()

    def run(self) -> int:
        from moodbox.daemon import Daemon

        old = {
            signal.SIGHUP: signal.signal(signal.SIGHUP, lambda s, f: self._hup.set()),
            # between two daemons (each installs its own while it runs) TERM/INT still end the service
            signal.SIGTERM: signal.signal(signal.SIGTERM, lambda s, f: self._stop()),
            signal.SIGINT: signal.signal(signal.SIGINT, lambda s, f: self._stop()),
        }
        # The daemon installs its own SIGTERM/SIGINT handlers while it runs; the wakeup fd still records
        # every signal, so a stop that lands during a reload's restart ends the service instead.
        seen, wake = socket.socketpair()
        seen.setblocking(False)
        wake.setblocking(False)
        old_wakeup = signal.set_wakeup_fd(wake.fileno(), warn_on_full_buffer=False)
        watcher = threading.Thread(target=self._watch, name="config-reload", daemon=True)
        watcher.start()
        code = 0
        try:
            while not self._quit.is_set():
                daemon = Daemon(self.cfg, notifier=self.notifier)
                with self._lock:
                    self._daemon = daemon
                if self._quit.is_set():
                    break
                _signals(seen)  # forget what came before this daemon
                code = daemon.run()
                with self._lock:
                    self._daemon = None
                    new, self._next = self._next, None
                    if _signals(seen) & {signal.SIGTERM, signal.SIGINT}:
                        self._quit.set()
                self.notifier.reloading = False
                if new is None or self._quit.is_set():
                    break
                self.cfg = new
                logging.getLogger().setLevel(new.logging.level)
                log.info("restarted with the reloaded config")
        finally:
            self._quit.set()
            self._hup.set()  # wake the watcher so it ends
            for s, h in old.items():
                signal.signal(s, h)
            signal.set_wakeup_fd(old_wakeup)
            seen.close()
            wake.close()
        return code

    def _stop(self) -> None:
        self._quit.set()
        with self._lock:
            if self._daemon is not None:
                self._daemon.stop()

    def _watch(self) -> None:
        """Off the signal handler: read and check the file, then hand over to the main loop."""
        while True:
            self._hup.wait()
            self._hup.clear()
            if self._quit.is_set():
                return
            where = str(self.path) if self.path is not None else "the default config"
            log.info("SIGHUP: reloading %s", where)
            try:
                new = load_checked(self.path)
            except ConfigError as exc:
                log.error("config reload refused, still running on the old config:\n%s", exc.report())
                continue
            with self._lock:
                if self._daemon is None or self._quit.is_set():
                    continue
                self._next = new
                self.notifier.reloading = True
                log.info("config reloaded: restarting the daemon's parts")
                self._daemon.stop()


def _signals(sock: socket.socket) -> set[int]:
    """The signal numbers the wakeup fd recorded since the last call."""
    got: set[int] = set()
    while True:
        try:
            data = sock.recv(256)
        except BlockingIOError:
            return got
        if not data:
            return got
        got.update(data)
