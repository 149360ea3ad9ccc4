"""A 10-minute replay soak of `moodbox run` with real mpd and mosquitto (marked slow: scripts/test --slow)."""

from __future__ import annotations

import os
import time

import pytest

from tests.box import box_factory, faces_folder, library  # noqa: F401  (fixtures)
from tests.mqtt_helpers import Recorder

SOAK_S = float(os.environ.get("MOODBOX_SOAK_S", "600"))
WARMUP_S = 60.0


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS")


@pytest.mark.slow
def test_soak_memory_stays_flat(box_factory, faces_folder, hamilton_clip):  # noqa: F811
    box = box_factory(hamilton_clip, camera={"loop": True, "realtime": True})
    rec = Recorder(box.broker.port)
    box.start()
    time.sleep(WARMUP_S)
    base = rss_mb(box.proc.pid)
    samples = [base]
    end = time.monotonic() + SOAK_S
    while time.monotonic() < end:
        time.sleep(10)
        assert box.proc.poll() is None, box.log.read_text()[-2000:]
        samples.append(rss_mb(box.proc.pid))
    growth = samples[-1] - base
    print(
        f"\nsoak {SOAK_S:.0f} s: RSS after warm-up {base:.1f} MB, at the end {samples[-1]:.1f} MB "
        f"(growth {growth:+.2f} MB, max {max(samples):.1f} MB); {len(rec.on('moodbox/boxtest/state'))} state messages"
    )
    assert growth < 5.0
    assert base < 150.0
