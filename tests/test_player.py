"""The mood policy and the MPD player against a real mpd."""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from pathlib import Path

import mpd
import pytest

from devtools.servers import Mpd, make_library, write_m3u
from moodbox.config import MusicConfig
from moodbox.music.feedback import FeedbackStore
from moodbox.music.mood import MoodPolicy, Preferences, Track, choose
from tests.steered import SteeredPlayer
from tests.util import scaled, wait_for

TRACKS = [
    *(
        {"file": f"pop/happy{i}.ogg", "artist": "Sunny Band", "title": f"Happy {i}", "genre": "Pop", "comment": "en"}
        for i in range(1, 4)
    ),
    {"file": "pop/bad.ogg", "artist": "Bad Artist", "title": "Bad", "genre": "Pop", "comment": "de"},
    *({"file": f"blues/sad{i}.ogg", "artist": "Rain", "title": f"Sad {i}", "genre": "Blues"} for i in range(1, 4)),
    *({"file": f"ambient/calm{i}.ogg", "artist": "Still", "title": f"Calm {i}", "genre": "Ambient"} for i in range(1, 4)),
    *({"file": f"folk/gentle{i}.ogg", "artist": "Soft", "title": f"Gentle {i}", "genre": "Folk"} for i in range(1, 3)),
    *({"file": f"jazz/neutral{i}.ogg", "artist": "Plain", "title": f"Neutral {i}", "genre": "Jazz"} for i in range(1, 4)),
]


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> tuple[Path, Path]:
    music, playlists = make_library(tmp_path_factory.mktemp("lib"), TRACKS, seconds=2.0)
    write_m3u(playlists, "mood_happy", [t["file"] for t in TRACKS if t["genre"] == "Pop"])
    write_m3u(playlists, "mood_sad", [t["file"] for t in TRACKS if t["genre"] == "Blues"])
    write_m3u(playlists, "mood_neutral", [t["file"] for t in TRACKS if t["genre"] == "Jazz"])
    write_m3u(playlists, "mood_empty", [])
    return music, playlists


@pytest.fixture
def server(library, tmp_path):
    music, playlists = library
    with Mpd(tmp_path / "mpd", music, playlists) as s:
        yield s


LONG_TRACKS = [
    {"file": f"{g.lower()}/{g.lower()}{i}.ogg", "artist": f"{g} Band", "title": f"{g} {i}", "genre": g}
    for g in ("Pop", "Ambient", "Jazz", "Blues")
    for i in range(1, 4)
]
GENRE_MOOD = {"pop": "happy", "ambient": "calm", "jazz": "neutral", "blues": "sad"}


@pytest.fixture(scope="module")
def long_library(tmp_path_factory) -> tuple[Path, Path]:
    """30-second tracks: a change that waits for the end of the track cannot pass for one made at once."""
    music, playlists = make_library(tmp_path_factory.mktemp("longlib"), LONG_TRACKS, seconds=30.0)
    for genre, mood in GENRE_MOOD.items():
        write_m3u(playlists, f"mood_{mood}", [t["file"] for t in LONG_TRACKS if t["file"].startswith(genre)])
    return music, playlists


@pytest.fixture
def long_server(long_library, tmp_path):
    music, playlists = long_library
    with Mpd(tmp_path / "mpd-long", music, playlists) as s:
        yield s


def song_mood(file: str) -> str:
    return GENRE_MOOD[file.split("/")[0]]


def music_cfg(port: int, **kw) -> MusicConfig:
    base = {"mpd": {"host": "127.0.0.1", "port": port}, "queue_length": 6, "stage_tracks": 2, "crossfade_s": 0, "state_dir": None}
    base.update(kw)
    return MusicConfig.model_validate(base)


def client(port: int, password: str | None = None) -> mpd.MPDClient:
    c = mpd.MPDClient()
    c.connect("127.0.0.1", port)
    if password:
        c.password(password)
    return c


def queue_files(c: mpd.MPDClient) -> list[str]:
    return [s["file"] for s in c.playlistinfo()]


@pytest.fixture
def player_factory(tmp_path):
    players: list[SteeredPlayer] = []

    def make(cfg: MusicConfig, feedback: FeedbackStore | None = None, emotion: str | None = None) -> SteeredPlayer:
        """A started player; ``emotion`` is the stable emotion it starts with (else it opens with the
        fallback mood, as the box does before anyone is seen)."""
        p = SteeredPlayer(cfg, feedback or FeedbackStore(tmp_path / "state" / "feedback.json"), rng=random.Random(1), poll_s=0.05)
        p.set_emotion(emotion)
        p.start()
        players.append(p)
        return p

    yield make
    for p in players:
        p.stop()


def test_match_strategy_queues_the_emotions_playlist_and_waits_for_track_end(server, player_factory):
    p = player_factory(music_cfg(server.port), emotion="happy")
    wait_for(lambda: p.state().mood == "happy" and p.state().state == "play", what="happy music")
    c = client(server.port)
    assert set(queue_files(c)) <= {t["file"] for t in TRACKS if t["genre"] == "Pop"}
    assert len(c.playlistinfo()) == 6
    assert p.state().source == "playlist mood_happy"
    playing = c.currentsong()["id"]

    p.set_emotion("sad")
    # the upcoming tracks change at once; the playing track is left to finish
    wait_for(lambda: all(f.startswith("blues/") for f in queue_files(c)[1:]), what="sad tracks queued")
    assert c.currentsong()["id"] == playing
    assert p.state().mood == "happy"
    wait_for(lambda: c.currentsong().get("file", "").startswith("blues/"), timeout=4, what="the sad track to start")
    wait_for(lambda: p.state().mood == "sad", what="state to follow")


def test_immediate_change(server, player_factory):
    p = player_factory(music_cfg(server.port, change="immediate"), emotion="happy")
    wait_for(lambda: p.state().mood == "happy" and p.state().state == "play")
    c = client(server.port)
    p.set_emotion("sad")
    wait_for(lambda: c.currentsong().get("file", "").startswith("blues/"), timeout=1.0, what="an immediate change")


def test_uplift_stages_and_tag_queries(server, player_factory):
    p = player_factory(music_cfg(server.port, strategy="uplift"), emotion="sad")
    c = client(server.port)
    # uplift: gentle (2 tracks, a Folk tag query: no playlist), then happy
    wait_for(lambda: p.state().mood == "gentle", what="gentle first")
    files = queue_files(c)
    assert [f.split("/")[0] for f in files] == ["folk", "folk", "pop", "pop", "pop", "pop"]
    assert p.state().source == "query genre=Acoustic|Folk|Soul"
    p.set_emotion("angry")  # uplift: calm, from the Ambient query
    wait_for(lambda: all(f.startswith("ambient/") for f in queue_files(c)[1:]), what="calm tracks")


def test_preferences_exclude_artist_and_language(server, player_factory):
    prefs = {"exclude_artists": ["Bad Artist"]}
    p = player_factory(music_cfg(server.port, queue_length=12, preferences=prefs), emotion="happy")
    c = client(server.port)
    wait_for(lambda: p.state().mood == "happy" and len(queue_files(c)) == 12)
    assert "pop/bad.ogg" not in queue_files(c)
    p.stop()
    p = player_factory(music_cfg(server.port, preferences={"language": "de"}), emotion="happy")
    # the track playing is let finish; everything after it is the one German track
    wait_for(lambda: set(queue_files(c)[1:]) == {"pop/bad.ogg"}, what="only the German track")


def test_missing_playlist_falls_back_with_warning(server, player_factory, caplog):
    caplog.set_level(logging.WARNING)
    cfg = music_cfg(server.port, playlists={"fear": "mood_nowhere"}, queries={"fear": {"genre": "Nothing"}})
    p = player_factory(cfg, emotion="fear")
    wait_for(lambda: p.state().state == "play", what="music despite the missing playlist")
    c = client(server.port)
    assert all(f.startswith("jazz/") for f in queue_files(c))
    assert p.state().mood == "fear" and p.state().source.startswith("fallback neutral")
    assert "playlist 'mood_nowhere' cannot be used" in caplog.text
    assert "no track matches query genre=Nothing" in caplog.text
    assert "playing the fallback mood neutral instead" in caplog.text


def test_empty_playlist_uses_query(server, player_factory):
    p = player_factory(music_cfg(server.port, playlists={"happy": "mood_empty"}), emotion="happy")
    wait_for(lambda: p.state().mood == "happy")
    assert p.state().source == "query genre=Pop|Dance|Disco|Funk"


def test_nobody_in_view_keeps_the_music(server, player_factory):
    p = player_factory(music_cfg(server.port), emotion="sad")
    wait_for(lambda: p.state().mood == "sad")
    p.set_emotion(None)
    time.sleep(0.5)
    assert p.state().mood == "sad" and p.state().state == "play"


def test_queue_never_runs_out(server, player_factory):
    p = player_factory(music_cfg(server.port, queue_length=2), emotion="happy")
    wait_for(lambda: p.state().state == "play")
    time.sleep(6.5)  # three 2-second tracks past a two-track queue
    assert p.state().state == "play" and p.state().mood == "happy"


def test_override_skip_pause_volume(server, player_factory):
    p = player_factory(music_cfg(server.port, max_volume=60))
    c = client(server.port)
    p.set_override("calm")
    wait_for(lambda: p.state().mood == "calm" and p.state().override)
    p.set_emotion("happy")
    time.sleep(0.3)
    assert p.state().mood == "calm"  # the owner's choice wins over the camera
    first = c.currentsong()["id"]
    p.skip()
    wait_for(lambda: c.currentsong().get("id") != first, what="skip")
    p.pause()
    wait_for(lambda: c.status()["state"] == "pause", what="pause")
    p.resume()
    wait_for(lambda: c.status()["state"] == "play", what="resume")
    p.set_volume(95)
    wait_for(lambda: c.status().get("volume") == "60", what="volume capped at max_volume")
    p.set_override(None)
    wait_for(lambda: p.state().mood == "happy" and not p.state().override, timeout=4, what="back to auto")
    with pytest.raises(ValueError, match="unknown mood 'jolly'"):
        p.set_override("jolly")


def test_auto_dj_off_leaves_the_owners_queue_alone(server, player_factory):
    c = client(server.port)
    c.add("jazz/neutral1.ogg")
    c.add("blues/sad2.ogg")
    c.play(0)
    p = player_factory(music_cfg(server.port, auto_dj=False), emotion="happy")
    time.sleep(0.5)
    assert queue_files(c) == ["jazz/neutral1.ogg", "blues/sad2.ogg"]
    assert p.state().connected
    p.set_auto_dj(True)
    wait_for(lambda: all(f.startswith("pop/") for f in queue_files(c)[1:]), what="auto-DJ to take over")
    assert queue_files(c)[0] == "jazz/neutral1.ogg"  # the owner's track playing is let finish


def test_mpd_restart_reconnects_and_reapplies_the_mood(server, player_factory, caplog):
    p = player_factory(music_cfg(server.port), emotion="sad")
    wait_for(lambda: p.state().mood == "sad" and p.state().state == "play")
    server.kill()
    wait_for(lambda: not p.state().connected, what="the player to notice")
    p.set_volume(40)  # arrives while MPD is down: the owner's volume is applied when it returns
    server.start()
    t0 = time.monotonic()
    c = client(server.port)
    wait_for(
        lambda: c.status()["state"] == "play" and c.currentsong().get("file", "").startswith("blues/"),
        timeout=5,
        what="sad music again",
    )
    assert time.monotonic() - t0 < scaled(5)
    wait_for(lambda: c.status().get("volume") == "40", what="the queued volume")


def test_wrong_password_is_a_clear_error(library, tmp_path, player_factory):
    music, playlists = library
    with Mpd(tmp_path / "mpdpw", music, playlists, password="right") as s:
        p = player_factory(music_cfg(s.port, mpd={"host": "127.0.0.1", "port": s.port, "password": "wrong"}))
        err = wait_for(lambda: p.state().error, what="an error")
        assert f"MPD at 127.0.0.1:{s.port} rejected the password" in err
        p.stop()
        p = player_factory(music_cfg(s.port, mpd={"host": "127.0.0.1", "port": s.port}))
        err = wait_for(lambda: p.state().error, what="an error")
        assert "requires a password" in err
        p.stop()
        p = player_factory(music_cfg(s.port, mpd={"host": "127.0.0.1", "port": s.port, "password": "right"}), emotion="happy")
        wait_for(lambda: p.state().mood == "happy" and p.state().error is None, what="music with the right password")


def test_unreachable_mpd_names_host_and_port(player_factory):
    from devtools.servers import free_port

    port = free_port()
    p = player_factory(music_cfg(port))
    err = wait_for(lambda: p.state().error, what="an error")
    assert f"MPD at 127.0.0.1:{port} is unreachable" in err


def test_early_skip_is_remembered_per_mood_and_persisted(server, player_factory, tmp_path):
    store = FeedbackStore(tmp_path / "fb" / "feedback.json")
    p = player_factory(music_cfg(server.port), store, emotion="happy")
    c = client(server.port)
    wait_for(lambda: p.state().mood == "happy" and p.state().state == "play")
    skipped = c.currentsong()["file"]
    p.skip()
    wait_for(lambda: store.skips("happy").get(skipped) == 1, what="the skip to be recorded")
    again = FeedbackStore(tmp_path / "fb" / "feedback.json")
    assert again.skips("happy") == {skipped: 1} and again.skips("sad") == {}


def test_skipped_tracks_are_chosen_less_often():
    tracks = [Track(f"t{i}.ogg") for i in range(3)]
    rng = random.Random(0)
    firsts = Counter(choose(tracks, 1, Preferences(), {"t0.ogg": 4}, rng)[0].file for _ in range(3000))
    assert firsts["t0.ogg"] < 0.1 * firsts["t1.ogg"]
    prefs = Preferences(prefer_artists=("A",))
    pref_tracks = [Track("a.ogg", artist="A"), Track("b.ogg", artist="B")]
    firsts = Counter(choose(pref_tracks, 1, prefs, {}, rng)[0].file for _ in range(3000))
    assert firsts["a.ogg"] > 2 * firsts["b.ogg"]


def test_policy_strategies():
    cfg = MusicConfig()
    match = MoodPolicy("match", cfg.strategies, cfg.fallback_mood)
    uplift = MoodPolicy("uplift", cfg.strategies, cfg.fallback_mood)
    assert match.plan("sad").stages == ("sad",)
    assert uplift.plan("sad").stages == ("gentle", "happy")
    assert uplift.plan("angry").stages == ("calm",)
    assert match.plan(None).stages == ("neutral",)
    assert MoodPolicy.override("calm").override


def test_auto_dj_back_on_takes_over_again(server, player_factory):
    p = player_factory(music_cfg(server.port), emotion="happy")
    c = client(server.port)
    wait_for(lambda: p.state().mood == "happy" and p.state().state == "play")
    p.set_auto_dj(False)
    time.sleep(0.3)
    c.clear()
    c.add("jazz/neutral1.ogg")
    c.add("jazz/neutral2.ogg")
    c.play(0)
    time.sleep(0.3)
    assert queue_files(c) == ["jazz/neutral1.ogg", "jazz/neutral2.ogg"]
    p.set_auto_dj(True)  # the same emotion as before: it must still take the queue back
    wait_for(
        lambda: all(f.startswith("pop/") for f in queue_files(c)[1:]) and len(queue_files(c)) > 2, what="auto-DJ to take over"
    )


def test_state_is_unknown_until_mpd_reports_it(long_server, tmp_path):
    p = SteeredPlayer(music_cfg(long_server.port), FeedbackStore(tmp_path / "fb.json"), rng=random.Random(1), poll_s=0.05)
    assert p.state().music is None and p.state().volume is None and p.state().mood is None
    p.set_volume(30)  # the owner's saved settings, restored before start
    p.set_music(False)
    p.set_override("sad")
    assert p.state().volume is None  # not applied yet: never a made-up value
    p.start()
    try:
        c = client(long_server.port)
        wait_for(lambda: p.state().volume == 30 and c.status().get("volume") == "30", what="the saved volume applied")
        wait_for(lambda: len(queue_files(c)) == 6, what="the chosen mood's queue")
        assert all(f.startswith("blues/") for f in queue_files(c))
        time.sleep(0.5)
        assert c.status()["state"] == "stop" and p.state().music == "STOPPED"  # music OFF: built, not started
        p.set_music(True)
        wait_for(lambda: c.status()["state"] == "play", timeout=1.0, what="music ON to play")
        wait_for(lambda: p.state().music == "PLAYING" and p.state().mood == "sad", timeout=1.0, what="the state to follow")
    finally:
        p.stop()


def test_mood_choice_acts_at_once_and_auto_does_not_cut(long_server, player_factory):
    p = player_factory(music_cfg(long_server.port), emotion="happy")
    c = client(long_server.port)
    wait_for(lambda: p.state().mood == "happy" and p.state().music == "PLAYING", what="happy music")
    seen = []
    p.set_override("calm")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.0:
        st = p.state()
        seen.append((st.mood, st.song["file"] if st.song else None))
        if c.currentsong().get("file", "").startswith("ambient/") and st.mood == "calm":
            break
        time.sleep(0.02)
    else:
        raise AssertionError(f"the chosen mood did not play within 1 s (MPD plays {c.currentsong().get('file')})")
    # the mood shown is always the mood of the song shown, never the choice ahead of its music
    assert all(mood == song_mood(f) for mood, f in seen if f), seen
    assert p.state().override
    calm_id = c.currentsong()["id"]
    p.set_emotion("sad")  # the owner's choice wins over the camera
    time.sleep(0.3)
    assert c.currentsong()["id"] == calm_id and all(f.startswith("ambient/") for f in queue_files(c)[1:])
    p.set_override(None)  # back to auto: follow the emotion, without cutting the calm track
    wait_for(lambda: all(f.startswith("blues/") for f in queue_files(c)[1:]), what="sad music queued")
    time.sleep(0.3)
    assert c.currentsong()["id"] == calm_id and p.state().mood == "calm" and not p.state().override


def test_music_off_pauses_and_the_dj_never_starts_playback(long_server, player_factory):
    p = player_factory(music_cfg(long_server.port), emotion="happy")
    c = client(long_server.port)
    wait_for(lambda: p.state().music == "PLAYING", what="music")
    p.set_music(False)
    wait_for(lambda: c.status()["state"] == "pause", timeout=1.0, what="music OFF to pause")
    wait_for(lambda: p.state().music == "PAUSED", timeout=1.0, what="PAUSED in the state")
    first = c.currentsong()["id"]
    p.skip()
    wait_for(lambda: c.currentsong().get("id") != first, timeout=1.0, what="the skip")
    p.set_override("sad")  # a mood choice while paused: the sad track is ready, still paused
    wait_for(lambda: c.currentsong().get("file", "").startswith("blues/"), timeout=1.0, what="the sad track")
    p.set_emotion("neutral")
    p.set_override(None)
    wait_for(lambda: all(f.startswith("jazz/") for f in queue_files(c)[1:]), what="neutral music queued")
    c.clear()  # the queue runs out while paused: the DJ refills it and stays quiet
    wait_for(lambda: len(queue_files(c)) >= 2, what="the queue rebuilt")
    time.sleep(0.5)
    assert c.status()["state"] != "play" and p.state().music in ("PAUSED", "STOPPED")
    p.set_music(True)
    wait_for(lambda: c.status()["state"] == "play", timeout=1.0, what="music ON")
    assert c.currentsong()["file"].startswith("jazz/")


def test_music_off_is_reapplied_after_mpd_restarts(long_server, player_factory):
    p = player_factory(music_cfg(long_server.port), emotion="happy")
    wait_for(lambda: p.state().music == "PLAYING", what="music")
    long_server.stop()  # MPD saves its state (playing) and resumes it when it starts again
    wait_for(lambda: not p.state().connected, what="the player to notice")
    assert p.state().music is None and p.state().volume is None and p.state().mood is None  # not known now
    p.set_music(False)
    long_server.start()
    c = client(long_server.port)
    wait_for(lambda: p.state().connected, what="the reconnect")
    wait_for(lambda: c.status()["state"] != "play", timeout=1.0, what="the music to stay OFF")
    time.sleep(0.5)
    assert c.status()["state"] != "play"


def test_a_refused_command_costs_under_a_second(server, player_factory, caplog):
    """Issue 15 item 2: a skip while MPD is stopped was retried for 60 s, blocking every later command."""
    caplog.set_level(logging.INFO, logger="moodbox.music.player")
    c = client(server.port)
    p = player_factory(music_cfg(server.port, auto_dj=False))
    wait_for(lambda: p.state().connected and p.state().music == "STOPPED", what="a stopped MPD")
    p.skip()  # MPD refuses: {next} Not playing
    p.set_volume(40)
    t0 = time.monotonic()
    wait_for(lambda: c.status().get("volume") == "40", timeout=1.0, what="the volume after a refused skip")
    assert time.monotonic() - t0 <= scaled(1.0)
    p.skip()
    time.sleep(0.5)
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 2, [r.getMessage() for r in refusals]  # one line per refused skip, no retry storm
    assert "Not playing" in refusals[0].getMessage() and "skip" in refusals[0].getMessage()
    assert "unreachable" not in caplog.text


def test_stale_track_after_mpd_restart_is_replaced_at_once(long_server, player_factory):
    """Issue 15 item 7: MPD resumed another mood's track from its saved state and the player kept it to
    its end while reporting the new mood."""
    p = player_factory(music_cfg(long_server.port), emotion="happy")
    wait_for(lambda: p.state().mood == "happy" and p.state().music == "PLAYING", what="happy music")
    long_server.stop()  # MPD saves its queue and state (playing a happy track), as its periodic save would
    wait_for(lambda: not p.state().connected, what="the player to notice")
    p.set_emotion("sad")
    long_server.start()  # resumes the happy track where it was
    c = client(long_server.port)
    seen = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3.0:
        st = p.state()
        seen.append((st.mood, st.song["file"] if st.song else None))
        if st.connected and st.mood == "sad" and c.currentsong().get("file", "").startswith("blues/"):
            break
        time.sleep(0.02)
    else:
        raise AssertionError(f"still playing {c.currentsong().get('file')} 3 s after MPD came back")
    assert c.status()["state"] == "play"
    assert all(mood == song_mood(f) for mood, f in seen if f and mood), seen  # never the new mood on the old song
    assert all(f.startswith("blues/") for f in queue_files(c)[c.status().get("song") and int(c.status()["song"]) :])


def test_a_mood_track_mpd_resumes_is_kept(long_server, player_factory):
    """The other side of the check: a resumed track that is the mood's own plays on, and its mood is known."""
    p = player_factory(music_cfg(long_server.port), emotion="happy")
    wait_for(lambda: p.state().mood == "happy" and p.state().music == "PLAYING", what="happy music")
    long_server.stop()
    wait_for(lambda: not p.state().connected, what="the player to notice")
    long_server.start()
    c = client(long_server.port)
    resumed = c.currentsong()["file"]
    assert resumed.startswith("pop/")
    wait_for(lambda: p.state().connected and p.state().mood == "happy", what="the resumed track's mood")
    time.sleep(0.5)
    assert c.currentsong()["file"] == resumed and c.status()["state"] == "play"


def test_missing_playlist_is_warned_once_and_a_missing_song_is_left_out(library, tmp_path, player_factory, caplog):
    """Issue 16 item 8: the missing-playlist warning came twice; a playlist naming a file MPD does not have
    made every refill fail."""
    caplog.set_level(logging.WARNING)
    music, playlists = library
    write_m3u(playlists, "mood_holes", ["pop/happy1.ogg", "pop/gone.ogg", "pop/happy2.ogg"])
    with Mpd(tmp_path / "mpd-holes", music, playlists) as s:
        cfg = music_cfg(s.port, playlists={"fear": "mood_nowhere", "happy": "mood_holes"}, queue_length=4)
        p = player_factory(cfg, emotion="fear")
        wait_for(lambda: p.state().state == "play", what="music despite the missing playlist")
        p.set_emotion("happy")
        c = client(s.port)
        wait_for(lambda: set(queue_files(c)[1:]) == {"pop/happy1.ogg", "pop/happy2.ogg"}, what="the happy tracks MPD has")
        time.sleep(2.5)  # refills go on: the missing file is not tried (nor warned about) again
        lines = [r.getMessage() for r in caplog.records]
    assert len([m for m in lines if "mood_nowhere" in m]) == 1, lines
    assert len([m for m in lines if "pop/gone.ogg" in m]) == 1, lines
    assert not [m for m in lines if "refused a command" in m], lines


@pytest.mark.parametrize("music", [None, False])
def test_a_paused_mpd_is_resumed_unless_the_owner_switched_music_off(long_server, tmp_path, music):
    """The role's MPD restores a power cut's queue paused; the box resumes it unless music is OFF."""
    c = client(long_server.port)
    c.add("pop/pop1.ogg")
    c.add("pop/pop2.ogg")
    c.play(0)
    wait_for(lambda: c.status()["state"] == "play", what="MPD playing")
    c.pause(1)
    p = SteeredPlayer(music_cfg(long_server.port), FeedbackStore(tmp_path / "fb.json"), rng=random.Random(1), poll_s=0.05)
    p.set_emotion("happy")
    if music is not None:
        p.set_music(music)
    p.start()
    try:
        if music is None:
            wait_for(lambda: c.status()["state"] == "play", timeout=1.0, what="the paused music resumed")
            wait_for(lambda: p.state().mood == "happy", what="the resumed happy track's mood")  # it is the mood's own
        else:
            wait_for(lambda: p.state().connected and len(queue_files(c)) == 7, what="the mood's queue")
            time.sleep(0.5)
            assert c.status()["state"] == "pause" and p.state().music == "PAUSED"
    finally:
        p.stop()


def test_an_unexpected_error_is_logged_once_and_the_player_recovers(server, player_factory, caplog, monkeypatch):
    p = player_factory(music_cfg(server.port), emotion="happy")
    wait_for(lambda: p.state().mood == "happy", what="happy music")
    real = p.dj.queue
    calls = {"n": 0}

    def broken(*args, **kw):
        calls["n"] += 1
        if calls["n"] <= 3:
            raise RuntimeError("a bug in the DJ")
        return real(*args, **kw)

    monkeypatch.setattr(p.dj, "queue", broken)
    p.set_emotion("sad")
    wait_for(lambda: p.state().mood == "sad", timeout=8, what="sad music after the error stopped")
    assert calls["n"] == 4
    assert len([r for r in caplog.records if "player error" in r.getMessage()]) == 1
    assert p.state().error is None
