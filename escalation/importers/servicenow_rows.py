"""One CSV record of a ServiceNow incident log -> a validated snapshot, or the reasons it is unusable.

Invariants:

- :meth:`RowParser.parse` never raises for any list of strings: a record is a :class:`Snapshot`
  or a non-empty list of reasons (DESIGN.md §10).
- Required fields (:data:`~.servicenow_mapping.REQUIRED_COLUMNS`) must be valid or the row is a
  problem; an invalid optional field (``reopen_count``, ``resolved_at``, ``closed_at``) is ignored
  with a warning and the row is still used.
- Counts (``sys_mod_count``, ``reopen_count``) are ASCII decimal integers in [0, 2**31 - 1] (the
  range of ServiceNow's integer fields): no sign, no ``_``, no other scripts' digits, no
  overflow (so every count fits the events' JSON).
- Times lie in ``[1970-01-01T00:00:00Z, 2200-01-01T00:00:00Z)`` (DESIGN.md §10 "plausible time").
- Values quoted back in a reason are cut to :data:`SHOWN` characters (a field may hold 1 MiB).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from typing import NamedTuple

from escalation.importers.servicenow_csv import Problem, ServiceNowImportError
from escalation.importers.servicenow_mapping import (
    LOGICAL_COLUMNS,
    REQUIRED_COLUMNS,
    ServiceNowMapping,
)

__all__ = ["BadTime", "COUNT_MAX", "EARLIEST", "LATEST", "RowParser", "SHOWN", "Snapshot"]

COUNT_MAX = 2**31 - 1
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)   # exclusive
SHOWN = 60
_DIGITS = re.compile(r"[0-9]+")


def shown(text: str) -> str:
    """``repr(text)``, cut to SHOWN characters with the full length noted."""
    if len(text) <= SHOWN:
        return repr(text)
    return f"{text[:SHOWN]!r}... ({len(text):,} characters)"


def parse_count(text: str) -> int | str:
    """A count, or why ``text`` is not one ("is not an integer", "is out of range ...")."""
    if text.startswith("-") and _DIGITS.fullmatch(text[1:]):
        return "is negative"
    if not _DIGITS.fullmatch(text):
        return "is not an integer"
    # The length test first: int() of a very long digit string is slow (and refused past 4300).
    if len(text.lstrip("0")) > len(str(COUNT_MAX)) or int(text) > COUNT_MAX:
        return f"is out of range (at most {COUNT_MAX})"
    return int(text)


class BadTime(NamedTuple):
    """Why a timestamp is unusable: ``kind`` "unparseable" or "implausible", and a detail."""

    kind: str
    detail: str


_IMPLAUSIBLE = BadTime("implausible", "is outside [1970-01-01T00:00:00Z, 2200-01-01T00:00:00Z)")


@dataclass(slots=True)
class Snapshot:
    line: int
    number: str
    mod: int
    updated: datetime
    opened: datetime
    state: str
    kind: str                         # open | resolved | closed | cancelled
    priority: str                     # mapped (P1..)
    raw_priority: str
    reopen_count: int | None
    assignee: str | None
    group: str | None
    resolved_at: datetime | None
    closed_at: datetime | None
    values: dict[str, str | None]     # logical column -> value (None when missing)

    def tracked(self) -> tuple:
        return (self.state, self.priority, self.reopen_count, self.assignee, self.group)


class RowParser:
    """Parses records into snapshots; collects row problems and warnings."""

    def __init__(self, mapping: ServiceNowMapping, tz: tzinfo, header: list[str]):
        self.m = mapping
        self.tz = tz
        self.missing = frozenset(mapping.missing_values)
        self.kinds = mapping.states.kind_of()
        self.width = len(header)
        positions = {name.strip(): i for i, name in enumerate(header)}
        self.index: dict[str, int] = {}
        for col in LOGICAL_COLUMNS:
            pos = positions.get(mapping.header_name(col))
            if pos is not None:
                self.index[col] = pos
        absent = [f"{c} (header {mapping.header_name(c)!r})" if mapping.header_name(c) != c else c
                  for c in REQUIRED_COLUMNS if c not in self.index]
        if absent:
            raise ServiceNowImportError(f"required column(s) missing from the header: {', '.join(absent)}")
        self._times: dict[str, datetime | BadTime] = {}
        # Only the columns events copy are kept per snapshot (memory: ~140k rows in the full log).
        kept = {"category", "subcategory", "made_sla", *mapping.attributes, *mapping.final_attributes}
        kept.update(src.column for src in (mapping.service, mapping.customer) if src.column is not None)
        self.kept = tuple(col for col in LOGICAL_COLUMNS if col in kept and col in self.index)

    def value(self, record: list[str], col: str) -> str | None:
        pos = self.index.get(col)
        if pos is None:
            return None
        text = record[pos].strip()
        return None if text in self.missing else text

    def time(self, text: str) -> datetime | BadTime:
        """The instant, or why ``text`` is not a usable one (cached: the log repeats times a lot)."""
        try:
            return self._times[text]
        except KeyError:
            pass
        parsed = self._parse_time(text)
        self._times[text] = parsed
        return parsed

    def _parse_time(self, text: str) -> datetime | BadTime:
        try:
            local = datetime.strptime(text, self.m.timestamp_format)
        except ValueError:
            return BadTime("unparseable", f"(expected {self.m.timestamp_format})")
        # Year check before the zone: converting year 1 or 9999 with an offset can overflow.
        if not 1969 <= local.year <= 2200:
            return _IMPLAUSIBLE
        parsed = local.replace(tzinfo=self.tz)
        return parsed if EARLIEST <= parsed < LATEST else _IMPLAUSIBLE

    def parse(self, line: int, record: list[str], warnings: list[Problem]) -> Snapshot | list[tuple[str, str]]:
        """A snapshot, or the (kind, reason) pairs why the row cannot be used."""
        if len(record) != self.width:
            return [("wrong number of fields", f"expected {self.width} fields, got {len(record)}")]
        reasons: list[tuple[str, str]] = []
        v = {col: self.value(record, col) for col in self.index}

        number = v.get("number")
        if number is None:
            reasons.append(("missing number", "missing number"))
        mod = self._required_count(v, "sys_mod_count", reasons)
        times = {col: self._required_time(v, col, reasons) for col in ("sys_updated_at", "opened_at")}

        state = v.get("incident_state")
        kind = self.kinds.get(state) if state is not None else None
        if state is None:
            reasons.append(("missing incident_state", "missing incident_state"))
        elif kind is None:
            reasons.append(("unknown incident_state", f"unknown incident_state {shown(state)}"))

        raw_priority = v.get("priority")
        priority = self.m.priorities.get(raw_priority) if raw_priority is not None else None
        if raw_priority is None:
            reasons.append(("missing priority", "missing priority"))
        elif priority is None:
            reasons.append(("unknown priority", f"unknown priority {shown(raw_priority)}"))

        if reasons:
            return reasons
        return Snapshot(
            line=line, number=number, mod=mod, updated=times["sys_updated_at"],
            opened=times["opened_at"], state=state, kind=kind, priority=priority,
            raw_priority=raw_priority, reopen_count=self._optional_count(v, line, number, warnings),
            assignee=v.get("assigned_to"), group=v.get("assignment_group"),
            resolved_at=self._optional_time(v, "resolved_at", line, number, warnings),
            closed_at=self._optional_time(v, "closed_at", line, number, warnings),
            values={col: v[col] for col in self.kept},
        )

    def _required_count(self, v: dict[str, str | None], col: str, reasons: list[tuple[str, str]]) -> int:
        text = v.get(col)
        if text is None:
            reasons.append((f"missing {col}", f"missing {col}"))
            return -1
        count = parse_count(text)
        if isinstance(count, str):
            # the wording "sys_mod_count is not an integer: 'six'" predates the range checks
            why = count.removesuffix(f" (at most {COUNT_MAX})").removeprefix("is ")
            reasons.append((f"{col} is {why}", f"{col} {count}: {shown(text)}"))
            return -1
        return count

    def _required_time(self, v: dict[str, str | None], col: str,
                       reasons: list[tuple[str, str]]) -> datetime | None:
        text = v.get(col)
        if text is None:
            reasons.append((f"missing {col}", f"missing {col}"))
            return None
        parsed = self.time(text)
        if isinstance(parsed, BadTime):
            reasons.append((f"{parsed.kind} {col}", f"{parsed.kind} {col} {shown(text)} {parsed.detail}"))
            return None
        return parsed

    def _optional_count(self, v: dict[str, str | None], line: int, number: str,
                        warnings: list[Problem]) -> int | None:
        text = v.get("reopen_count")
        if text is None:
            return None
        count = parse_count(text)
        if isinstance(count, str):
            warnings.append(Problem(line, f"{number}: reopen_count {shown(text)} {count}; ignored"))
            return None
        return count

    def _optional_time(self, v: dict[str, str | None], col: str, line: int, number: str,
                       warnings: list[Problem]) -> datetime | None:
        text = v.get(col)
        if text is None:
            return None
        parsed = self.time(text)
        if isinstance(parsed, BadTime):
            # the expected format is left out, as in the wording before the range check
            detail = "" if parsed.kind == "unparseable" else f" {parsed.detail}"
            warnings.append(Problem(line, f"{number}: {parsed.kind} {col} {shown(text)}{detail}; ignored"))
            return None
        return parsed
