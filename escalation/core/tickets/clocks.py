"""Clock arithmetic on ``ClockState`` records (counted time, pause, stop, cycles).

Every function takes the calendar the clock accrues in (its current target's calendar, or 24x7
when the priority has no target for that clock) and an instant ``t`` at which the change happens;
callers guarantee ``t >= checkpoint`` (late events are clamped before they get here).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from escalation.core.tickets.state import PAUSED, RUNNING, STOPPED, ClockState
from escalation.core.time.calendar import Calendar

_ZERO = timedelta(0)


def start(t: datetime, paused: bool) -> ClockState:
    clock = ClockState(PAUSED if paused else RUNNING, t, t)
    if paused:
        _pause_span(clock, t, None)
    return clock


def _pause_span(clock: ClockState, begin: datetime, end: datetime | None) -> None:
    if clock.pauses is None:
        clock.pauses = []
    clock.pauses.append([begin, end])


def mark_fired(clock: ClockState, key: str, at: datetime) -> None:
    """Threshold ``key`` fired at ``at`` in this cycle."""
    if clock.fired is None:
        clock.fired = {}
    clock.fired[key] = at


def mark_repeat(clock: ClockState, key: str, n: int) -> None:
    """Level ``key`` has emitted ``n`` repeats in this cycle."""
    if clock.repeats is None:
        clock.repeats = {}
    clock.repeats[key] = n


def elapsed_at(clock: ClockState, cal: Calendar, t: datetime) -> timedelta:
    if clock.status != RUNNING or t <= clock.checkpoint:
        return clock.elapsed
    return clock.elapsed + cal.counted(clock.checkpoint, t)


def checkpoint(clock: ClockState, cal: Calendar, t: datetime) -> None:
    clock.elapsed = elapsed_at(clock, cal, t)
    clock.checkpoint = max(clock.checkpoint, t)


def pause(clock: ClockState, cal: Calendar, t: datetime) -> None:
    if clock.status == RUNNING:
        checkpoint(clock, cal, t)
        clock.status = PAUSED
        _pause_span(clock, t, None)


def resume(clock: ClockState, t: datetime) -> None:
    if clock.status == PAUSED:
        clock.pauses[-1][1] = t
        clock.status = RUNNING
        clock.checkpoint = max(clock.checkpoint, t)


def stop(clock: ClockState, cal: Calendar, t: datetime) -> None:
    if clock.status == PAUSED:
        resume(clock, t)
    checkpoint(clock, cal, t)
    clock.status = STOPPED
    clock.stops += 1


def restart_stopped(clock: ClockState, t: datetime, paused: bool) -> None:
    """Continue a stopped clock in the same cycle with its elapsed time (reopen: resume)."""
    if t > clock.checkpoint:  # the stopped span counts as paused, so a recompute excludes it too
        _pause_span(clock, clock.checkpoint, t)
    clock.checkpoint = max(clock.checkpoint, t)
    clock.status = RUNNING
    if paused:
        pause_at(clock, t)


def pause_at(clock: ClockState, t: datetime) -> None:
    clock.status = PAUSED
    _pause_span(clock, t, None)


def new_cycle(clock: ClockState, t: datetime, paused: bool, note: str | None) -> None:
    """Start the next cycle from zero; the caller has closed the old cycle's alert first."""
    clock.cycle += 1
    clock.alert, clock.alerts = None, 0
    clock.cycle_start = clock.checkpoint = t
    clock.elapsed = timedelta(0)
    clock.pauses = clock.fired = clock.repeats = None
    clock.breached_at, clock.stops, clock.note = None, 0, note
    clock.status = RUNNING
    if paused:
        pause_at(clock, t)


def paused_total(clock: ClockState, t: datetime) -> timedelta:
    """Wall-clock time the clock spent paused in this cycle up to ``t``."""
    if not clock.pauses:
        return _ZERO  # most clocks never pause: no new timedelta for them
    total = _ZERO
    for begin, end in clock.pauses:
        stop_at = min(end or t, t)
        if stop_at > begin:
            total += stop_at - begin
    return total


def recompute(clock: ClockState, cal: Calendar, t: datetime) -> None:
    """Elapsed counted time from the cycle start to ``t`` in ``cal``, excluding paused spans."""
    elapsed, cursor = timedelta(0), clock.cycle_start
    for begin, end in clock.pauses or ():
        if begin > cursor:
            elapsed += cal.counted(cursor, min(begin, t))
        cursor = max(cursor, end or t)
    if clock.status != STOPPED and cursor < t:
        elapsed += cal.counted(cursor, t)
    clock.elapsed, clock.checkpoint = elapsed, max(clock.checkpoint, t)


# Memo of ``cal.add(checkpoint, offset - elapsed)`` for ``due_of``: the next-deadline search asks
# the same question again whenever another clock of the incident changed. ``add`` is a pure
# function of (calendar, instant, amount) with a UTC result. The key is made of the clock's own
# objects (their hashes are cached in them, a new timedelta's is not): the checkpoint when it is
# UTC, else its exact instant ``t - EPOCH`` (aware datetimes sharing another tzinfo compare by
# wall time), then offset and elapsed (equal pairs, equal amounts). Bounded: cleared when full.
_ADD_MEMO: dict = {}
_ADD_MEMO_MAX = 1 << 12  # ~1 MB; a larger memo saves little more
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def due_of(clock: ClockState, cal: Calendar, offset: timedelta) -> datetime | None:
    """When counted elapsed time reaches ``offset``; the checkpoint if already past; None if not running."""
    if clock.status != RUNNING:
        return None
    t, elapsed = clock.checkpoint, clock.elapsed
    if offset <= elapsed:
        return t
    key = (cal, t if t.tzinfo is timezone.utc else t - _EPOCH, offset, elapsed)
    due = _ADD_MEMO.get(key)
    if due is None:
        if len(_ADD_MEMO) >= _ADD_MEMO_MAX:
            _ADD_MEMO.clear()
        due = _ADD_MEMO[key] = cal.add(t, offset - elapsed)
    return due
