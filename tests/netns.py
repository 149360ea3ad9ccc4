"""Network namespaces a test makes for itself: a small LAN of boxes (``ip netns``, veth pairs onto a bridge
in a hub namespace), with nothing routed anywhere else, removed when the test ends.

Processes run inside a namespace through ``ip netns exec``. The test itself reaches into one through a
thread that enters it (``setns``): a socket made there stays in that namespace and can be used from any
thread afterwards.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

CLONE_NEWNET = 0x40000000
R = TypeVar("R")


def why_not() -> str | None:
    """Why namespaces cannot be made or entered here (None: they can): the reason a test skips with."""
    if os.geteuid() != 0:
        return "network namespaces need root (scripts/test as root, or sudo)"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    try:  # everything a LAN needs, once: a namespace, a bridge, a veth pair, a process inside
        probe = Lan(prefix="10.231.255")
        try:
            probe.add("probe")
            subprocess.run(["ip", "netns", "exec", probe.ns("probe"), "true"], check=True, capture_output=True, text=True)
        finally:
            probe.remove()
    except subprocess.CalledProcessError as exc:
        return f"`{' '.join(map(str, exc.cmd))}` fails here: {(exc.stderr or '').strip() or exc.returncode}"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class Lan:
    """A hub namespace with a bridge at ``<prefix>.254``, and one namespace per host at ``<prefix>.<n>``."""

    def __init__(self, prefix: str = "10.231.0") -> None:
        self.prefix = prefix
        self.tag = uuid.uuid4().hex[:5]
        self.hub = self._ns("hub")
        self.hosts: dict[str, str] = {}  # name -> namespace
        self.addresses: dict[str, str] = {"hub": f"{prefix}.254"}
        _ip("netns", "add", self.hub)
        try:
            _ip("-n", self.hub, "link", "set", "lo", "up")
            _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.hub, "addr", "add", f"{prefix}.254/24", "dev", "br0")
            _ip("-n", self.hub, "link", "set", "br0", "up")
        except subprocess.CalledProcessError:
            self.remove()  # nothing left behind by a LAN that could not be made
            raise

    def _ns(self, name: str) -> str:
        return f"mbx-{self.tag}-{name}"

    def add(self, name: str) -> str:
        """A host on the LAN: its own namespace, loopback and one address; returns its address."""
        n = len(self.hosts) + 1
        ns = self._ns(name)
        _ip("netns", "add", ns)
        self.hosts[name] = ns  # removed with the LAN even if what follows fails
        _ip("-n", ns, "link", "set", "lo", "up")
        # both ends are made in the host's namespace (names are per namespace), then one moves to the hub
        _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", f"p{n}")
        _ip("-n", ns, "link", "set", f"p{n}", "netns", self.hub)
        _ip("-n", ns, "addr", "add", f"{self.prefix}.{n}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", self.hub, "link", "set", f"p{n}", "master", "br0")
        _ip("-n", self.hub, "link", "set", f"p{n}", "up")
        self.addresses[name] = f"{self.prefix}.{n}"
        return self.addresses[name]

    def ns(self, name: str) -> str:
        return self.hub if name == "hub" else self.hosts[name]

    def popen(self, name: str, argv: list[str], log: Any, env: dict[str, str] | None = None) -> subprocess.Popen:
        """A process inside a host's namespace (``ip netns exec`` execs it: the pid is the process's own)."""
        return subprocess.Popen(["ip", "netns", "exec", self.ns(name), *argv], stdout=log, stderr=subprocess.STDOUT, env=env)

    def call(self, name: str, fn: Callable[[], R]) -> R:
        """``fn()`` on a thread inside a host's namespace; its result (sockets included) comes back."""
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                fd = os.open(f"/run/netns/{self.ns(name)}", os.O_RDONLY)
                try:
                    if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), f"setns into {self.ns(name)}")
                finally:
                    os.close(fd)
                box["value"] = fn()
            except BaseException as exc:  # handed to the caller
                box["error"] = exc

        t = threading.Thread(target=run)
        t.start()
        t.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    def remove(self) -> None:
        """Every namespace this LAN made (their veth pairs go with them)."""
        for ns in [*self.hosts.values(), self.hub]:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def leftovers(self) -> list[str]:
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        return [line.split()[0] for line in out.splitlines() if line.startswith(f"mbx-{self.tag}-")]
