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
module reads the log and gathers the results; :mod:`.servicenow_incident` turns each incident's
snapshots into events.

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
from escalation.importers.servicenow_incident import IncidentWalk
from escalation.importers.servicenow_mapping import (
    MappingError,
    ServiceNowMapping,
    load_mapping,
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
        incident = IncidentWalk(number, snaps, mapping, agreement, problems, warnings)
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
