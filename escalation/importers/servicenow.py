"""Turn a ServiceNow incident audit log (CSV) into escalation ticket events (DESIGN.md §3).

Data: "Incident management process enriched event log", Claudio Amaral, Marcelo Fantinato,
Hajo Reijers, Sarajane Peres; UCI Machine Learning Repository, https://doi.org/10.24432/C57S4H,
licensed CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/). Anything derived from it
(event files, samples in tests) carries this attribution.

The log has one row per update snapshot of an incident: the values of every field after the
update, numbered by ``sys_mod_count``. The importer groups rows by ``number``, orders each
incident's snapshots by (``sys_mod_count``, ``sys_updated_at``, line) - rows may be out of order
and repeated - and compares each snapshot with the one before it.

Events (all pure; nothing here prints or reads the clock):

- ``ticket.opened`` at ``opened_at`` with the first snapshot's priority (mapped, "1 - Critical" ->
  P1 ...), ``service``/``customer`` from the mapping, ``agreement`` (argument, else mapping,
  default ``servicenow-sample``), summary "<category> / <subcategory>", and attributes copied from
  the first snapshot (impact, urgency, contact_type, ...) plus the *final* ``made_sla`` and
  ``closed_code`` as ServiceNow recorded them on the incident's last snapshot.
- ``ticket.acknowledged`` at the first snapshot whose state is no longer ``New`` (Active, any
  Awaiting state, Resolved, Closed) **or** that has an ``assigned_to`` value, whichever comes
  first. Why: ServiceNow's own response SLAs stop when "Assigned to" is filled in, and every state
  other than New needs a person who has looked at the ticket (asking the caller for information,
  "Awaiting User Info", is a response; so is resolving it). The narrower "Active or assigned"
  rule leaves 181 of the 890 incidents in the sample file unacknowledged although they were
  answered (New -> Awaiting User Info, New -> Resolved without an assignee), which would count as
  response breaches that never happened. Configurable in the mapping (``acknowledge``).
- ``ticket.status_changed`` when the mapped status of ``incident_state`` changes (New/Active ->
  ``in_progress``, Awaiting User Info/Evidence -> ``pending_customer``, Awaiting Vendor/Problem ->
  ``pending_vendor``). The status before the first snapshot is ``initial_status``
  (``in_progress``), so a ticket created in an Awaiting state gets one at once.
- ``ticket.priority_changed`` when the priority changes; ``ticket.assigned`` when
  ``assigned_to`` or ``assignment_group`` changes (also for the first snapshot when either is set;
  a cleared value is sent as null).
- ``ticket.resolved`` when the state enters a resolved state (or goes straight to Closed). Time:
  the row's ``resolved_at`` (falling back to the incident's last known ``resolved_at``) when it
  lies inside the resolution cycle (not before the cycle started, not after the next reopen);
  otherwise the snapshot's ``sys_updated_at`` - ServiceNow keeps only the latest resolution in
  ``resolved_at``, so earlier cycles of a reopened incident use their snapshot time. The
  attribute ``time_source`` says which one was used.
- ``ticket.reopened`` when a resolved ticket's state returns to an open state or its
  ``reopen_count`` increases (one event when both happen in the same snapshot).
- ``ticket.closed`` (``ticket.cancelled``) at the first closed (cancelled) snapshot, at
  ``closed_at`` when that is not earlier than the previous event, else at the snapshot time. A
  ticket is resolved (and acknowledged) before it is closed. Snapshots after the close produce
  nothing: a closed one is a no-change row, an open one is reported (nothing may follow
  ``ticket.closed``).
- ``ticket.updated`` (public) for snapshots without another change only with the mapping's
  ``emit_updates: true``: the log cannot tell a customer-visible comment from a work note.

Times: the log has day-first local times ("29-02-2016 01:16") in an unstated time zone. They are
read in the ``timezone`` argument (default UTC, because the data set does not say) and written as
RFC 3339 with offset. A nonexistent or ambiguous local time (daylight-saving change) takes the
offset in force before the change (``fold=0``). A ticket's events never go back in time: an event
earlier than ``opened_at`` or than the ticket's previous event (snapshots whose ``sys_mod_count``
and ``sys_updated_at`` disagree) is moved to that time, with ``clamped_from`` and
``clamp_reason`` in its attributes and a warning naming the line.

Every data row is accounted for: it produced events, or it is a no-change snapshot (repeated,
or a change the contract has no event for, such as New -> Active without a new assignee), or it
is reported as a problem with its line number and reason (missing number, unparseable or
implausible timestamp, a count that is not an integer in [0, 2**31 - 1], unknown state or
priority, wrong field count, ...). Rows that were used but whose data needed a repair (clamping,
an invalid optional field) are listed as warnings. ``rows == rows_with_events + rows_no_change +
rows_with_problems`` always holds. Reading (broken quoting, field and line limits, NUL bytes,
invalid UTF-8) is in :mod:`.servicenow_csv`; validating one row in :mod:`.servicenow_rows`; this
module turns each incident's snapshots into events.

Events are in global time order; ties are broken by ticket, then by the ticket's own sequence.
Event ids are ``f"{number}-{seq}"`` (seq 1 = opened), so re-importing the same file gives the
same ids (the engine ignores repeated ids).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from escalation.importers.servicenow_csv import (
    FIELD_LIMIT,
    RECORD_LIMIT,
    Problem,
    RecordReader,
    ServiceNowImportError,
    field_limit,
    open_source,
)
from escalation.importers.servicenow_mapping import (
    BOOLEAN_COLUMNS,
    MappingError,
    ServiceNowMapping,
    load_mapping,
    slug,
)
from escalation.importers.servicenow_rows import RowParser
from escalation.importers.servicenow_rows import Snapshot as _Snapshot

__all__ = [
    "FIELD_LIMIT",
    "ImportResult",
    "ImportStats",
    "MappingError",
    "Problem",
    "RECORD_LIMIT",
    "ServiceNowImportError",
    "ServiceNowMapping",
    "import_incident_log",
    "load_mapping",
]


@dataclass(slots=True)
class ImportStats:
    rows: int = 0                    # data rows (records after the header, blank lines excluded)
    blank_lines: int = 0
    incidents: int = 0               # incidents with at least one usable row
    rows_with_events: int = 0
    rows_no_change: int = 0          # used, but nothing to emit (includes rows_duplicate)
    rows_duplicate: int = 0          # same tracked values as the snapshot before
    rows_with_problems: int = 0
    events: int = 0
    events_by_type: dict[str, int] = field(default_factory=dict)
    problems_by_reason: dict[str, int] = field(default_factory=dict)
    clamped_events: dict[str, int] = field(default_factory=dict)
    warnings: int = 0

    @property
    def rows_used(self) -> int:
        return self.rows_with_events + self.rows_no_change

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows, "blank_lines": self.blank_lines, "incidents": self.incidents,
            "rows_used": self.rows_used, "rows_with_events": self.rows_with_events,
            "rows_no_change": self.rows_no_change, "rows_duplicate": self.rows_duplicate,
            "rows_with_problems": self.rows_with_problems, "events": self.events,
            "events_by_type": dict(self.events_by_type),
            "problems_by_reason": dict(self.problems_by_reason),
            "clamped_events": dict(self.clamped_events), "warnings": self.warnings,
        }


@dataclass(slots=True)
class ImportResult:
    events: list[dict[str, Any]]     # DESIGN.md §3 ticket events, JSON-ready, in time order
    problems: list[Problem]          # rows not used, by line
    warnings: list[Problem]          # rows used with a repair, by line
    stats: ImportStats


# --------------------------------------------------------------------------------------------
# One incident -> events


def _rfc3339(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


@dataclass(slots=True)
class _Pending:
    type: str
    time: datetime
    line: int
    fields: dict[str, Any]
    attributes: dict[str, Any]
    candidate: datetime | None = None      # resolved_at / closed_at to use when plausible


class _Incident:
    """Walks one incident's ordered snapshots and produces its events."""

    def __init__(self, number: str, snaps: list[_Snapshot], mapping: ServiceNowMapping,
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

    # attribute helpers
    def _attr(self, snap: _Snapshot, col: str) -> Any:
        value = snap.values.get(col)
        if value is not None and col in BOOLEAN_COLUMNS:
            upper = value.upper()
            if upper in ("TRUE", "FALSE"):
                return upper == "TRUE"
        return value

    def _source(self, source, snap: _Snapshot) -> str:
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

    def run(self) -> list[tuple[datetime, int, dict[str, Any]]]:
        m = self.m
        first, last = self.snaps[0], self.snaps[-1]
        opened_time = first.opened
        for snap in self.snaps[1:]:
            if snap.opened != first.opened:
                self.warnings.append(Problem(snap.line, f"{self.number}: opened_at {_rfc3339(snap.opened)} differs "
                                             f"from the first snapshot's ({_rfc3339(opened_time)}); first kept"))

        category, subcategory = first.values.get("category"), first.values.get("subcategory")
        attributes: dict[str, Any] = {"source": "servicenow"}
        for col in m.attributes:
            attributes[col] = self._attr(first, col)
        for col in m.final_attributes:
            attributes[col] = self._attr(last, col)
        attributes["servicenow_priority"] = first.raw_priority
        attributes["line"] = first.line
        opened = _Pending("ticket.opened", opened_time, first.line, {
            "agreement": self.agreement,
            "service": self._source(m.service, first),
            "priority": first.priority,
            "customer": self._source(m.customer, first),
            "summary": f"{category or '(no category)'} / {subcategory or '(no subcategory)'}",
        }, attributes)
        pending: list[_Pending] = [opened]

        status = m.initial_status
        priority = first.priority
        assignee: str | None = None
        group: str | None = None
        reopen_count = first.reopen_count
        acked = resolved = closed = False
        unacked_states = frozenset(m.acknowledge.unacknowledged_states)
        last_resolved_at = self._last_known("resolved_at")
        last_closed_at = self._last_known("closed_at")
        previous: tuple | None = None
        made_sla_false_at: datetime | None = None

        for snap in self.snaps:
            t = snap.updated
            if snap.values.get("made_sla") is not None and made_sla_false_at is None \
                    and self._attr(snap, "made_sla") is False:
                made_sla_false_at = t
            tracked = snap.tracked()
            if previous is not None and tracked == previous:
                self.duplicates += 1
            previous = tracked
            if closed:
                if snap.kind in ("closed", "cancelled"):
                    self.no_change.append(snap.line)
                else:
                    self.problems.append(Problem(
                        snap.line, f"{self.number}: snapshot after the incident was closed "
                        f"(incident_state {snap.state!r}); nothing may follow ticket.closed",
                        "open snapshot after the incident was closed"))
                continue

            def emit(type_: str, fields: dict[str, Any] | None = None, attrs: dict[str, Any] | None = None,
                     candidate: datetime | None = None) -> _Pending:
                base = {"line": snap.line, "sys_mod_count": snap.mod}
                if attrs:
                    base.update(attrs)
                event = _Pending(type_, t, snap.line, fields or {}, base, candidate)
                pending.append(event)
                return event

            before = len(pending)
            count_up = (snap.reopen_count is not None and reopen_count is not None
                        and snap.reopen_count > reopen_count)
            if resolved and (snap.kind == "open" or count_up):
                emit("ticket.reopened", attrs={"incident_state": snap.state, "reopen_count": snap.reopen_count})
                resolved = False
            elif count_up:
                self.warnings.append(Problem(snap.line, f"{self.number}: reopen_count rose from {reopen_count} to "
                                             f"{snap.reopen_count} without an observed resolution; no ticket.reopened"))
            if snap.reopen_count is not None:
                reopen_count = snap.reopen_count

            if snap.priority != priority:
                emit("ticket.priority_changed", {"priority": snap.priority},
                     {"from": priority, "servicenow_priority": snap.raw_priority})
                priority = snap.priority
            if (snap.assignee, snap.group) != (assignee, group):
                emit("ticket.assigned", {"assignee": snap.assignee, "group": snap.group})
                assignee, group = snap.assignee, snap.group
            if not acked and snap.kind != "cancelled":
                by_state = snap.state not in unacked_states
                by_assignee = m.acknowledge.on_assignee and snap.assignee is not None
                if by_state or by_assignee:
                    emit("ticket.acknowledged", attrs={
                        "rule": "state" if by_state else "assignee", "incident_state": snap.state})
                    acked = True

            if snap.kind == "open":
                new_status = m.states.open[snap.state]
                if new_status != status:
                    emit("ticket.status_changed", {"status": new_status}, {"incident_state": snap.state})
                    status = new_status
            elif snap.kind in ("resolved", "closed"):
                if not resolved:
                    emit("ticket.resolved", attrs={"incident_state": snap.state},
                         candidate=snap.resolved_at or last_resolved_at)
                    resolved = True
                if snap.kind == "closed":
                    emit("ticket.closed", candidate=snap.closed_at or last_closed_at,
                         attrs={col: self._attr(snap, col) for col in m.final_attributes}
                         | {"made_sla_false_at": _rfc3339(made_sla_false_at) if made_sla_false_at else None})
                    closed = True
            else:  # cancelled
                emit("ticket.cancelled", candidate=snap.closed_at or last_closed_at)
                closed = True

            if len(pending) == before and m.emit_updates:
                emit("ticket.updated", {"public": True})
            if len(pending) > before:
                self.lines_with_events.add(snap.line)
            else:
                self.no_change.append(snap.line)

        self._place_candidates(pending)
        return self._finish(pending, opened_time)

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


# --------------------------------------------------------------------------------------------
# Entry point


def import_incident_log(
    source: str | Path | TextIO | Iterable[str],
    *,
    agreement: str | None = None,
    mapping: ServiceNowMapping | str | Path | None = None,
    timezone: str | tzinfo = "UTC",
    on_progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import a ServiceNow incident audit log.

    ``source``: a path, an open text file, or an iterable of CSV lines (header first).
    ``agreement``: the ``agreement`` of every ``ticket.opened`` (default: the mapping's,
    ``servicenow-sample``). ``mapping``: a :class:`ServiceNowMapping`, a path to a mapping YAML
    file, or ``None`` for the defaults. ``timezone``: IANA name the log's local times are read in.
    ``on_progress(rows_read)`` is called every 1000 rows and at the end.

    Raises :class:`ServiceNowImportError` for an unknown time zone, an empty input, an unreadable
    header or missing required columns, :class:`MappingError` for a bad mapping file; row-level
    trouble (quoting, sizes, encoding, values) never raises: see :mod:`.servicenow_csv` for the
    limits. The csv module's process-wide field limit is raised to :data:`FIELD_LIMIT` meanwhile.
    """
    if not isinstance(mapping, ServiceNowMapping):
        mapping = load_mapping(mapping)
    if isinstance(timezone, str):
        try:
            tz: tzinfo = ZoneInfo(timezone)
        except (ValueError, OSError, LookupError):
            raise ServiceNowImportError(f"unknown time zone {timezone!r}") from None
    else:
        tz = timezone
    agreement = agreement or mapping.agreement

    with field_limit(FIELD_LIMIT):
        if isinstance(source, (str, Path)):
            with open_source(source) as handle:
                return _import(handle, mapping, tz, agreement, on_progress)
        return _import(source, mapping, tz, agreement, on_progress)


def _import(lines: TextIO | Iterable[str], mapping: ServiceNowMapping, tz: tzinfo, agreement: str,
            on_progress: Callable[[int], None] | None) -> ImportResult:
    """Read, walk each incident, sort. Invariant: ``stats.rows`` (non-blank records) equals
    ``rows_with_events + rows_no_change + rows_with_problems``; each problem is one row."""
    reader = RecordReader(lines)
    parser = RowParser(mapping, tz, reader.header())
    stats = ImportStats()
    problems: list[Problem] = []
    warnings: list[Problem] = []
    incidents = _read_snapshots(reader, parser, stats, problems, warnings, on_progress)

    keyed: list[tuple[datetime, str, int, dict[str, Any]]] = []
    for number, snaps in incidents.items():
        snaps.sort(key=lambda s: (s.mod, s.updated, s.line))
        incident = _Incident(number, snaps, mapping, agreement, problems, warnings)
        for time, seq, record in incident.run():
            keyed.append((time, number, seq, record))
        stats.rows_with_events += len(incident.lines_with_events)
        stats.rows_no_change += len(incident.no_change)
        stats.rows_duplicate += incident.duplicates
        for reason, n in incident.clamped.items():
            stats.clamped_events[reason] = stats.clamped_events.get(reason, 0) + n
    keyed.sort(key=lambda k: (k[0], k[1], k[2]))
    events = [k[3] for k in keyed]

    problems.sort(key=lambda p: p.line)
    warnings.sort(key=lambda p: p.line)
    stats.incidents = len(incidents)
    stats.rows_with_problems = len(problems)
    stats.events = len(events)
    stats.events_by_type = dict(sorted(Counter(e["type"] for e in events).items()))
    stats.problems_by_reason = dict(Counter(p.kind or p.reason for p in problems).most_common())
    stats.warnings = len(warnings)
    return ImportResult(events=events, problems=problems, warnings=warnings, stats=stats)


def _read_snapshots(reader: RecordReader, parser: RowParser, stats: ImportStats, problems: list[Problem],
                    warnings: list[Problem], on_progress: Callable[[int], None] | None) -> dict[str, list[_Snapshot]]:
    """Every record after the header: a blank line, a problem, or a snapshot of its incident."""
    incidents: dict[str, list[_Snapshot]] = {}
    for item in reader:
        if isinstance(item, Problem):       # unreadable: quoting, size, NUL, encoding
            stats.rows += 1
            problems.append(item)
            continue
        line, record = item
        if not record:
            stats.blank_lines += 1
            continue
        stats.rows += 1
        if on_progress is not None and stats.rows % 1000 == 0:
            on_progress(stats.rows)
        snap = parser.parse(line, record, warnings)
        if not isinstance(snap, _Snapshot):
            problems.append(Problem(line, "; ".join(text for _, text in snap),
                                    "; ".join(kind for kind, _ in snap)))
            continue
        incidents.setdefault(snap.number, []).append(snap)
    if on_progress is not None:
        on_progress(stats.rows)
    return incidents
