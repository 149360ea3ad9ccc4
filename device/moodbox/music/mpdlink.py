"""The MPD connection (python-mpd2): connecting with clear password errors, closing, and MPD's
database seen through the DJ's small library interface."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

import mpd

from moodbox.config import MpdConfig
from moodbox.music.analysis import STICKER_MOODS, scores_of
from moodbox.music.dj import PlaylistUnavailable, StickersUnavailable
from moodbox.music.mood import Track
from moodbox.support.repeats import Repeats

log = logging.getLogger(__name__)

#: the connection is gone (MPD stopped, crashed, restarted): reconnect; a CommandError is a refusal instead
CONNECTION_ERRORS = (mpd.ConnectionError, mpd.ProtocolError, OSError, EOFError)


class PasswordError(RuntimeError):
    """MPD refused the password, or wants one: retrying soon will not help."""


class Refusals:
    """MPD refusing the same thing on every poll is logged once, then summarised when it stops."""

    def __init__(self, where: str) -> None:
        self.where = where
        self._repeats = Repeats(log)
        self.last: str | None = None

    def refused(self, exc: mpd.CommandError) -> None:
        msg = str(exc)
        if msg != self.last:
            self.clear()
            self.last = msg
        if self._repeats.occurred(msg):
            log.warning("MPD at %s refused a command: %s", self.where, msg)

    def clear(self) -> None:
        if self.last is not None:
            self._repeats.ended(self.last, "MPD at %s refused that {count} times in all", self.where)
        self.last = None


def where(cfg: MpdConfig) -> str:
    return f"{cfg.host}:{cfg.port}"


def connect(cfg: MpdConfig) -> mpd.MPDClient:
    """A connected, authorised client; raises PasswordError or one of CONNECTION_ERRORS."""
    c = mpd.MPDClient()
    c.timeout = cfg.timeout_s
    c.idletimeout = None
    c.connect(cfg.host, cfg.port)
    try:
        if cfg.password:
            try:
                c.password(cfg.password)
            except mpd.CommandError as exc:
                raise PasswordError(
                    f"MPD at {where(cfg)} rejected the password (music.mpd.password / MOODBOX_MPD_PASSWORD): {exc}"
                ) from None
        try:
            c.status()
        except mpd.CommandError as exc:
            if "permission" in str(exc):
                raise PasswordError(
                    f"MPD at {where(cfg)} requires a password: set music.mpd.password or MOODBOX_MPD_PASSWORD"
                ) from None
            raise
    except BaseException:
        close(c)
        raise
    return c


def close(c: mpd.MPDClient) -> None:
    try:
        c.close()
    except Exception:  # already gone
        pass
    try:
        c.disconnect()
    except Exception:
        pass


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def query_expression(query: Mapping[str, str]) -> str:
    """MPD filter syntax: every tag must match its regular expression (case-insensitive)."""
    parts = [f"({tag} =~ {_quote('(?i)' + rx)})" for tag, rx in query.items()]
    return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


class MpdLibrary:
    """MPD's database and stored playlists as the DJ's Library (connection errors pass through)."""

    def __init__(self, client: mpd.MPDClient) -> None:
        self.client = client

    @staticmethod
    def _tracks(items: list[dict[str, object]]) -> list[Track]:
        return [Track.from_mpd(i) for i in items if "file" in i]  # not directories or playlists

    def playlist(self, name: str) -> list[Track]:
        try:
            return self._tracks(self.client.listplaylistinfo(name))
        except mpd.CommandError as exc:
            raise PlaylistUnavailable(str(exc)) from None

    def find(self, query: Mapping[str, str]) -> list[Track]:
        return self._tracks(self.client.find(query_expression(query)))

    def everything(self) -> list[Track]:
        return self._tracks(self.client.listallinfo())

    def analysed(self) -> dict[str, dict[str, float]]:
        return read_stickers(self.client, STICKER_MOODS)


def find_stickers(client: mpd.MPDClient, name: str) -> dict[str, object]:
    """file -> the decoded JSON of its sticker ``name``, for every song that has one (one command); a
    value that is not JSON is left out. Raises StickersUnavailable when MPD keeps none."""
    try:
        found = client.sticker_find("song", "", name)
    except mpd.CommandError as exc:
        raise StickersUnavailable(str(exc)) from None
    out: dict[str, object] = {}
    for item in found:
        file, sticker = item.get("file"), item.get("sticker", "")
        if isinstance(file, str) and isinstance(sticker, str):
            try:
                out[file] = json.loads(sticker.partition("=")[2])
            except ValueError:
                continue
    return out


def read_stickers(client: mpd.MPDClient, name: str) -> dict[str, dict[str, float]]:
    """file -> the scores in its sticker ``name``, for every song whose sticker is an object of numbers."""
    return {f: v for f, raw in find_stickers(client, name).items() if (v := scores_of(raw)) is not None}
