"""Small pure parts of the MPD link: the filter syntax and the once-then-summarised refusal log."""

from __future__ import annotations

import logging

import mpd

from moodbox.music.mpdlink import Refusals, query_expression


def test_query_expression_quotes_and_ignores_case():
    assert query_expression({"genre": "Pop|Dance"}) == "(genre =~ '(?i)Pop|Dance')"
    assert query_expression({"genre": "Rock", "artist": "O'Brien\\x"}) == (
        "((genre =~ '(?i)Rock') AND (artist =~ '(?i)O\\'Brien\\\\x'))"
    )


def test_a_refusal_repeated_on_every_poll_is_logged_once_then_summarised(caplog):
    caplog.set_level(logging.WARNING)
    r = Refusals("127.0.0.1:6600")
    for _ in range(50):
        r.refused(mpd.CommandError("[50@0] {play} No such song"))
    r.clear()
    r.clear()
    msgs = [rec.getMessage() for rec in caplog.records]
    assert msgs == [
        "MPD at 127.0.0.1:6600 refused a command: [50@0] {play} No such song",
        "MPD at 127.0.0.1:6600 refused that 50 times in all",
    ]
