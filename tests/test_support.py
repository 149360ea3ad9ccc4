"""The small helpers every part shares: backoff, log-once-then-summarise, durable files."""

from __future__ import annotations

import logging

from moodbox.support.backoff import Backoff
from moodbox.support.durable import set_aside, write_atomically
from moodbox.support.repeats import Repeats


def test_backoff_doubles_to_its_most_and_starts_again_after_a_success():
    b = Backoff(2.0, 10.0)
    assert [b.next() for _ in range(5)] == [2.0, 4.0, 8.0, 10.0, 10.0]
    b.reset()
    assert b.next() == 2.0


def test_repeats_says_the_first_then_every_nth_and_every_interval(caplog):
    now = [0.0]
    r = Repeats(logging.getLogger("t"), first_n=2, every_n=10, every_s=60.0, clock=lambda: now[0])
    said = [r.occurred("x") for _ in range(12)]
    assert said == [True, True] + [False] * 7 + [True, False, False]  # 1st, 2nd, 10th
    now[0] = 61.0
    assert r.occurred("x") and not r.occurred("x")  # once a minute while it lasts
    assert r.occurred("y")  # another condition is said on its own
    with caplog.at_level(logging.WARNING):
        r.ended("x", "x happened {count} times in {seconds} s (%s)", "done")
        r.ended("y", "y happened {count} times")
    assert [rec.getMessage() for rec in caplog.records] == ["x happened 14 times in 61 s (done)"]  # y only once
    assert not r.active("x") and r.occurred("x")  # after it ended, it is new again


def test_durable_write_replaces_whole_files_and_set_aside_keeps_the_bad_one(tmp_path):
    path = tmp_path / "sub" / "f.json"
    write_atomically(path, "one")
    write_atomically(path, "two")
    assert path.read_text() == "two" and sorted(p.name for p in path.parent.iterdir()) == ["f.json"]
    aside = set_aside(path)
    assert aside.name == "f.json.corrupt" and aside.read_text() == "two" and not path.exists()
