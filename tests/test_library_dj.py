"""`moodbox run` with a real MPD whose sticker database holds known moods (as ``moodbox library scan``
leaves it): the DJ plays the tracks heard to fit, and the tag query's tracks where nothing was heard."""

from __future__ import annotations

import json

from devtools.servers import make_library
from tests.box import Box, T, faces_folder  # noqa: F401  (fixtures)
from tests.mqtt_helpers import Recorder
from tests.util import wait_for

TRACKS = [
    # tagged Pop, heard as happy
    *({"file": f"heard/bright{i}.ogg", "artist": "Bright", "title": f"Bright {i}", "genre": "Pop"} for i in range(3)),
    # tagged Pop too, but heard as sad: its sound decides, not its tag
    *({"file": f"heard/slow{i}.ogg", "artist": "Slow", "title": f"Slow {i}", "genre": "Pop"} for i in range(3)),
    # never analysed: the tag queries' fallback
    {"file": "new/pop.ogg", "artist": "New", "title": "New pop", "genre": "Pop"},
    {"file": "new/blues.ogg", "artist": "New", "title": "New blues", "genre": "Blues"},
    {"file": "new/jazz.ogg", "artist": "New", "title": "New jazz", "genre": "Jazz"},
]
HAPPY = {"happy": 0.31, "sad": 0.04, "calm": 0.12, "angry": 0.02, "neutral": 0.10}
SAD = {"happy": 0.03, "sad": 0.38, "calm": 0.25, "angry": 0.01, "neutral": 0.12}


def upcoming(c) -> set[str]:
    """The current track and those after it (the tracks played before stay in MPD's queue a while)."""
    pos = int(c.status().get("song", 0))
    return {s["file"] for s in c.playlistinfo()[pos:]}


def test_run_plays_what_the_stickers_say_fits_and_falls_back_to_tag_queries(tmp_path, faces_folder):
    library = make_library(tmp_path / "lib", TRACKS, seconds=2.0)  # no stored playlists
    box = Box(tmp_path / "box", library, faces_folder)
    try:
        c = box.mpd_client()
        for i in range(3):
            c.sticker_set("song", f"heard/bright{i}.ogg", "moodbox_moods", json.dumps(HAPPY))
            c.sticker_set("song", f"heard/slow{i}.ogg", "moodbox_moods", json.dumps(SAD))
        rec = Recorder(box.broker.port)
        box.start()
        wait_for(lambda: rec.last(f"{T}/availability") == b"online", timeout=15, what="online")
        bright = {f"heard/bright{i}.ogg" for i in range(3)}
        slow = {f"heard/slow{i}.ogg" for i in range(3)}

        rec.publish(f"{T}/mood/set", "happy")
        # the bright tracks and the one Pop track nobody analysed; never a slow one, although tagged Pop
        wait_for(lambda: upcoming(c) == bright | {"new/pop.ogg"}, timeout=15, what="happy music queued")
        wait_for(
            lambda: "analysed 3" in (json.loads(rec.last(f"{T}/state") or b"{}").get("playlist") or ""),
            what="the state to say where the music came from",
        )
        rec.publish(f"{T}/mood/set", "sad")
        wait_for(lambda: upcoming(c) == slow | {"new/blues.ogg"}, timeout=15, what="sad music queued")
        assert c.currentsong().get("file") in slow | {"new/blues.ogg"}
        log = box.log.read_text()
        assert "Traceback" not in log
    finally:
        box.close()
