from __future__ import annotations

import os
import socket

from moodbox.sdnotify import Notifier


def test_no_socket_is_a_quiet_no_op():
    n = Notifier(env={})
    assert not n.enabled
    n.ready("x")
    n.watchdog()


def test_datagrams_reach_the_socket_and_watchdog_is_rate_limited(tmp_path):
    path = tmp_path / "notify"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(1)
    n = Notifier(env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())})
    assert n.watchdog_s == 4.0
    n.ready("running")
    assert s.recv(100) == b"READY=1\nSTATUS=running"
    n.watchdog()
    n.watchdog()  # within a quarter period: not sent again
    n.status("ok")
    assert s.recv(100) == b"WATCHDOG=1"
    assert s.recv(100) == b"STATUS=ok"
    s.close()


def test_abstract_namespace_and_foreign_watchdog():
    n = Notifier(env={"NOTIFY_SOCKET": "@moodbox-test", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert n.address == "\0moodbox-test"
    assert n.watchdog_s is None  # the watchdog belongs to another process
