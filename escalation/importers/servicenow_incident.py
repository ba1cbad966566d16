"""One ServiceNow incident's ordered snapshots -> its ticket events (the rules are in the
docstring of :mod:`escalation.importers.servicenow`).

Invariants: every snapshot of the incident is accounted for once, as a line with events
(``lines_with_events``), a no-change line (``no_change``) or a problem; the events come out in
the ticket's own order with times that never go back (an earlier one is clamped, with a warning);
event ids are ``f"{number}-{seq}"``, seq 1 being ``ticket.opened``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from escalation.importers.servicenow_csv import Problem
from escalation.importers.servicenow_mapping import (
    BOOLEAN_COLUMNS,
    ServiceNowMapping,
    slug,
)
from escalation.importers.servicenow_rows import Snapshot

__all__ = ["IncidentWalk"]


def _rfc3339(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


@dataclass(slots=True)
class _Pending:
    """An event before its time is settled (candidate times placed, clamping applied)."""

    type: str
    time: datetime
    line: int
    fields: dict[str, Any]
    attributes: dict[str, Any]
    candidate: datetime | None = None      # resolved_at / closed_at to use when plausible


class IncidentWalk:
    """Walks one incident's ordered snapshots once (:meth:`run`) and produces its events; what
    it saw is left in ``lines_with_events``, ``no_change``, ``duplicates`` and ``clamped``, its
    problems and warnings appended to the lists it was given."""

    def __init__(self, number: str, snaps: list[Snapshot], mapping: ServiceNowMapping,
                 agreement: str, problems: list[Problem], warnings: list[Problem]):
        self.number = number
        self.snaps = snaps
        self.m = mapping
        self.agreement = agreement
        self.problems = problems
        self.warnings = warnings
        self.lines_with_events: set[int] = set()
        self.no_change: list[int] = []
        self.duplicates = 0
        self.clamped: Counter[str] = Counter()
        self.pending: list[_Pending] = []
        # what the ticket looks like after the snapshots walked so far
        first = snaps[0]
        self.status = mapping.initial_status
        self.priority = first.priority
        self.assignee: str | None = None
        self.group: str | None = None
        self.reopen_count = first.reopen_count
        self.acked = self.resolved = self.closed = False
        self.previous: tuple | None = None
        self.made_sla_false_at: datetime | None = None
        self.unacked_states = frozenset(mapping.acknowledge.unacknowledged_states)
        self.last_resolved_at = self._last_known("resolved_at")
        self.last_closed_at = self._last_known("closed_at")

    # --- attribute helpers -------------------------------------------------------------------

    def _attr(self, snap: Snapshot, col: str) -> Any:
        value = snap.values.get(col)
        if value is not None and col in BOOLEAN_COLUMNS:
            upper = value.upper()
            if upper in ("TRUE", "FALSE"):
                return upper == "TRUE"
        return value

    def _source(self, source, snap: Snapshot) -> str:
        if source.constant is not None:
            return source.constant
        value = snap.values.get(source.column)
        if value is None:
            return source.default if source.default is not None else "unknown"
        return slug(value)

    def _last_known(self, col: str) -> datetime | None:
        for snap in reversed(self.snaps):
            value = getattr(snap, col)
            if value is not None:
                return value
        return None

    # --- the walk ----------------------------------------------------------------------------

    def run(self) -> list[tuple[datetime, int, dict[str, Any]]]:
        """``(time, seq, event)`` of every event of the incident, in its own order."""
        opened = self._opened()
        self.pending.append(opened)
        for snap in self.snaps:
            self._walk(snap)
        self._place_candidates(self.pending)
        return self._finish(self.pending, opened.time)

    def _opened(self) -> _Pending:
        """``ticket.opened`` from the first snapshot (final attributes from the last one)."""
        m, first, last = self.m, self.snaps[0], self.snaps[-1]
        for snap in self.snaps[1:]:
            if snap.opened != first.opened:
                self.warnings.append(Problem(snap.line, f"{self.number}: opened_at {_rfc3339(snap.opened)} differs "
                                             f"from the first snapshot's ({_rfc3339(first.opened)}); first kept"))
        category, subcategory = first.values.get("category"), first.values.get("subcategory")
        attributes: dict[str, Any] = {"source": "servicenow"}
        for col in m.attributes:
            attributes[col] = self._attr(first, col)
        for col in m.final_attributes:
            attributes[col] = self._attr(last, col)
        attributes["servicenow_priority"] = first.raw_priority
        attributes["line"] = first.line
        return _Pending("ticket.opened", first.opened, first.line, {
            "agreement": self.agreement,
            "service": self._source(m.service, first),
            "priority": first.priority,
            "customer": self._source(m.customer, first),
            "summary": f"{category or '(no category)'} / {subcategory or '(no subcategory)'}",
        }, attributes)

    def _walk(self, snap: Snapshot) -> None:
        """One snapshot: its events, or a no-change line, or (after the close) a problem."""
        if snap.values.get("made_sla") is not None and self.made_sla_false_at is None \
                and self._attr(snap, "made_sla") is False:
            self.made_sla_false_at = snap.updated
        tracked = snap.tracked()
        if self.previous is not None and tracked == self.previous:
            self.duplicates += 1
        self.previous = tracked
        if self.closed:
            if snap.kind in ("closed", "cancelled"):
                self.no_change.append(snap.line)
            else:
                self.problems.append(Problem(
                    snap.line, f"{self.number}: snapshot after the incident was closed "
                    f"(incident_state {snap.state!r}); nothing may follow ticket.closed",
                    "open snapshot after the incident was closed"))
            return
        before = len(self.pending)
        self._reopen(snap)
        self._priority_assignment_ack(snap)
        self._state(snap)
        if len(self.pending) == before and self.m.emit_updates:
            self._emit(snap, "ticket.updated", {"public": True})
        if len(self.pending) > before:
            self.lines_with_events.add(snap.line)
        else:
            self.no_change.append(snap.line)

    def _emit(self, snap: Snapshot, type_: str, fields: dict[str, Any] | None = None,
              attrs: dict[str, Any] | None = None, candidate: datetime | None = None) -> None:
        base = {"line": snap.line, "sys_mod_count": snap.mod}
        if attrs:
            base.update(attrs)
        self.pending.append(_Pending(type_, snap.updated, snap.line, fields or {}, base, candidate))

    def _reopen(self, snap: Snapshot) -> None:
        """``ticket.reopened`` when a resolved ticket opens again or its reopen_count rises."""
        count_up = (snap.reopen_count is not None and self.reopen_count is not None
                    and snap.reopen_count > self.reopen_count)
        if self.resolved and (snap.kind == "open" or count_up):
            self._emit(snap, "ticket.reopened", attrs={"incident_state": snap.state, "reopen_count": snap.reopen_count})
            self.resolved = False
        elif count_up:
            self.warnings.append(Problem(snap.line, f"{self.number}: reopen_count rose from {self.reopen_count} to "
                                         f"{snap.reopen_count} without an observed resolution; no ticket.reopened"))
        if snap.reopen_count is not None:
            self.reopen_count = snap.reopen_count

    def _priority_assignment_ack(self, snap: Snapshot) -> None:
        """``ticket.priority_changed``, ``ticket.assigned`` and the first ``ticket.acknowledged``."""
        if snap.priority != self.priority:
            self._emit(snap, "ticket.priority_changed", {"priority": snap.priority},
                       {"from": self.priority, "servicenow_priority": snap.raw_priority})
            self.priority = snap.priority
        if (snap.assignee, snap.group) != (self.assignee, self.group):
            self._emit(snap, "ticket.assigned", {"assignee": snap.assignee, "group": snap.group})
            self.assignee, self.group = snap.assignee, snap.group
        if not self.acked and snap.kind != "cancelled":
            by_state = snap.state not in self.unacked_states
            by_assignee = self.m.acknowledge.on_assignee and snap.assignee is not None
            if by_state or by_assignee:
                self._emit(snap, "ticket.acknowledged", attrs={
                    "rule": "state" if by_state else "assignee", "incident_state": snap.state})
                self.acked = True

    def _state(self, snap: Snapshot) -> None:
        """``ticket.status_changed``, ``ticket.resolved``, ``ticket.closed`` or ``ticket.cancelled``."""
        if snap.kind == "open":
            new_status = self.m.states.open[snap.state]
            if new_status != self.status:
                self._emit(snap, "ticket.status_changed", {"status": new_status}, {"incident_state": snap.state})
                self.status = new_status
        elif snap.kind in ("resolved", "closed"):
            if not self.resolved:
                self._emit(snap, "ticket.resolved", attrs={"incident_state": snap.state},
                           candidate=snap.resolved_at or self.last_resolved_at)
                self.resolved = True
            if snap.kind == "closed":
                made_sla_false_at = _rfc3339(self.made_sla_false_at) if self.made_sla_false_at else None
                self._emit(snap, "ticket.closed", candidate=snap.closed_at or self.last_closed_at,
                           attrs={col: self._attr(snap, col) for col in self.m.final_attributes}
                           | {"made_sla_false_at": made_sla_false_at})
                self.closed = True
        else:  # cancelled
            self._emit(snap, "ticket.cancelled", candidate=snap.closed_at or self.last_closed_at)
            self.closed = True

    def _place_candidates(self, pending: list[_Pending]) -> None:
        """Use resolved_at/closed_at where they fall inside their cycle, else the snapshot time."""
        cycle_start = pending[0].time
        for i, event in enumerate(pending):
            if event.type == "ticket.reopened":
                cycle_start = event.time
            if event.type not in ("ticket.resolved", "ticket.closed", "ticket.cancelled"):
                continue
            limit = next((e.time for e in pending[i + 1:] if e.type == "ticket.reopened"), None)
            cand = event.candidate
            if cand is None:
                event.attributes["time_source"] = "snapshot"
            elif cand < cycle_start or (limit is not None and cand > limit):
                event.attributes["time_source"] = "snapshot"
                col = "resolved_at" if event.type == "ticket.resolved" else "closed_at"
                event.attributes[f"{col}_ignored"] = _rfc3339(cand)
            else:
                if cand != event.time:
                    event.attributes["snapshot_time"] = _rfc3339(event.time)
                event.time = cand
                event.attributes["time_source"] = "resolved_at" if event.type == "ticket.resolved" else "closed_at"

    def _finish(self, pending: list[_Pending], opened_time: datetime) -> list[tuple[datetime, int, dict[str, Any]]]:
        floor = opened_time
        out = []
        for seq, event in enumerate(pending, start=1):
            if event.time < floor:
                reason = ("earlier than opened_at" if floor == opened_time
                          else "earlier than the ticket's previous event; snapshots out of order")
                event.attributes["clamped_from"] = _rfc3339(event.time)
                event.attributes["clamp_reason"] = reason
                self.clamped[reason] += 1
                self.warnings.append(Problem(event.line, f"{self.number}: {event.type} at {_rfc3339(event.time)} "
                                             f"moved to {_rfc3339(floor)} ({reason})"))
                event.time = floor
            floor = event.time
            record: dict[str, Any] = {"id": f"{self.number}-{seq}", "type": event.type,
                                      "time": _rfc3339(event.time), "ticket": self.number}
            record.update(event.fields)
            record["attributes"] = event.attributes
            out.append((event.time, seq, record))
        return out
