"""The live worker's garbage-collector policy (escalation.live.gcpolicy)."""

from __future__ import annotations

import gc

from escalation.live import gcpolicy


class _App:
    def __init__(self):
        self.timers = []

    def timer(self, interval, name):
        def register(fn):
            self.timers.append((interval, name, fn))
            return fn
        return register


def test_install_turns_off_automatic_full_collections_and_adds_a_timer():
    before = gc.get_threshold()
    try:
        app = _App()
        assert gcpolicy.install(app, 300) is True
        assert gc.get_threshold()[:2] == before[:2] and gc.get_threshold()[2] > 10**6
        assert [(i, n) for i, n, _ in app.timers] == [(300, "escalation-gc")]
        assert gcpolicy.install(_App(), 0) is False
    finally:
        gc.set_threshold(*before)


def test_maintenance_freezes_survivors_and_periodically_unfreezes():
    try:
        kept = [{"n": [i]} for i in range(10_000)]
        gcpolicy.maintain()
        assert gc.get_freeze_count() >= len(kept)
        runs = gcpolicy._State.runs
        for _ in range(gcpolicy.FULL_EVERY - runs % gcpolicy.FULL_EVERY - 1):
            gcpolicy.maintain()
        frozen = gc.get_freeze_count()
        del kept
        gcpolicy.maintain()  # the FULL_EVERY-th: unfreeze, collect, freeze again
        assert gc.get_freeze_count() < frozen
    finally:
        gc.unfreeze()


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_trim_gives_freed_heap_pages_back_to_the_system():
    if gcpolicy._TRIM is None:  # not glibc: nothing to give back, and trim says so
        assert gcpolicy.trim() is False
        return
    kept, dropped = [], []
    for i in range(40_000):  # 1 KiB values from the C allocator, interleaved with kept ones
        (kept if i % 8 == 0 else dropped).append(bytes(1024) + i.to_bytes(4, "little"))
    del dropped
    before = _rss_kib()
    assert gcpolicy.trim() is True
    assert _rss_kib() < before - 4096  # ~35 MiB were freed inside the heap; most pages go back
    assert len(kept) == 5_000
