"""The face tracker's effective settings: the config's ``detection`` keys and the fixed geometry and
timing of its searches (kept out of the config: they are the tracker's design, measured on real footage
in docs/performance.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moodbox.config import DetectionConfig


@dataclass(frozen=True)
class Tuning:
    """The tracker's effective settings: the config's ``detection`` keys (a full scan every frame when
    ``detection.tracking`` is off) and the fixed geometry and timing of its searches."""

    rescan_s: float = 0.5  # while faces are tracked, a full scan because much of the picture changed at most this often
    change_threshold: float = 4.0  # an 8x8 block whose mean grey level moved by more than this has changed
    full_scan_s: float = 5.0  # while faces are tracked (or lost ones searched for), a full scan at least this often
    idle_after_s: float = 5.0  # a lost face is searched for where it was this long; nobody seen this long: empty room ...
    idle_scan_s: float = 0.5  # ... which is scanned this often
    still_threshold: float = 2.0  # no block changed by more than this since the last frame analysed: nothing moved
    roi_margin: float = 0.5  # the wide search looks in a face's box grown by this much of its size
    motion: float = 0.15  # the narrow search looks this much of a face's size beyond its last raw hits
    body_side: float = 1.0  # change this many face widths either side of a tracked face belongs to its person ...
    body_below: float = 4.0  # ... and this many face heights below it (shoulders, hands, a nodding head)
    changed_share: float = 0.3  # more of the frame than this changed (a cut, a moving camera): a full scan
    empty_rescan_s: float = 0.2  # with nobody tracked, such full scans at most this often (a moving scene
    # with nobody in it scanned in full every frame cost hand-held footage most of its time)
    narrow: bool = False  # search just around a face's last raw hits first (on real faces, whose hits spread
    # over 0.7-1.4 times their size, it saved little and often had to be followed by the wide search)
    lost_rescan_s: float = 0.2  # a face lost calls for a full scan at once, unless one ran this recently ...
    ghost_s: float = 0.2  # ... and is searched for where it was (when it changed there) at most this often:
    # on a moving camera faces are lost often, and a full scan and a search each frame for them cost the film
    # a third of its time, for a face that the music (a 3 s smoothed emotion) gets back 0.2 s later at worst
    verify_s: float = 1.0  # a face whose head has not moved keeps its box, searched for again this often
    hold_shift: float = 0.03  # the head moved: shifted by more than this much of the face's size ...
    hold_change: float = 5.0  # ... or its shrunk image changed by more than this many grey levels on average
    hold_min: float = 2.0  # faces smaller than this many times detection.min_face are searched every frame

    @classmethod
    def from_config(cls, d: DetectionConfig, **fixed: Any) -> Tuning:
        shared = {"idle_scan_s": d.idle_scan_s, "still_threshold": d.still_threshold, **fixed}
        if not d.tracking:  # a full scan every frame
            return cls(rescan_s=0.0, change_threshold=0.0, full_scan_s=0.0, idle_after_s=1e9, empty_rescan_s=0.0, **shared)
        return cls(
            rescan_s=d.rescan_s,
            change_threshold=d.change_threshold,
            full_scan_s=d.full_scan_s,
            idle_after_s=d.idle_after_s,
            **shared,
        )
