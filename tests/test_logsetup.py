"""A repeating warning is logged once, then summarised (pure logic, a fake clock)."""

from __future__ import annotations

import logging

from moodbox.logsetup import RepeatFilter


def _record(msg: str, *args: object, level: int = logging.WARNING, name: str = "moodbox.daemon") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_repeating_warning_is_logged_once_then_summarised():
    now = [0.0]
    f = RepeatFilter(window_s=600, clock=lambda: now[0])
    passed = []
    for i in range(700):  # one a second, its retry delay changing
        now[0] = float(i)
        r = _record("camera %s cannot be opened; retrying in %.0f s", "picamera2", min(2**i, 60))
        if f.filter(r):
            passed.append(r.getMessage())
    assert passed == [
        "camera picamera2 cannot be opened; retrying in 1 s",
        "camera picamera2 cannot be opened; retrying in 60 s (repeated 599 times in 600 s)",
    ]


def test_other_warnings_and_info_lines_pass():
    f = RepeatFilter(window_s=600, clock=lambda: 0.0)
    assert f.filter(_record("MPD at %s is unreachable", "localhost:6600"))
    assert f.filter(_record("MQTT broker at %s refused the connection", "localhost:1883"))
    assert f.filter(_record("MPD at %s is unreachable", "localhost:6600", name="moodbox.music.player"))  # another logger
    assert f.filter(_record("MPD at %s is unreachable", "localhost:6600", level=logging.ERROR))  # another level
    assert not f.filter(_record("MPD at %s is unreachable", "localhost:6600"))
    for _ in range(3):
        assert f.filter(_record("stable emotion: %s (%.2f)", "happy", 0.5, level=logging.INFO))


def test_it_forgets_the_oldest_warnings_beyond_its_memory():
    f = RepeatFilter(window_s=600, clock=lambda: 0.0, keep=2)
    for word in ("alpha", "beta", "gamma"):
        assert f.filter(_record("lost %s", word))
    assert f.filter(_record("lost alpha"))  # forgotten, so logged again
    assert not f.filter(_record("lost gamma"))
