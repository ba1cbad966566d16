"""An open incident's next due instant, saved beside it, so that a restart schedules it undecoded.

A worker that starts (or takes a partition over) loads every open incident of its partitions: it
must know when each is next due before the first tick. Decoding one to find out costs ~26 µs
(its JSON, the codec, the next-due computation: ``bench/live_recovery.py --in-process``), ~40 s
for 1M open incidents. So an open incident's table value carries, on its first line (the store's
``note``: ``b"<p> <note>\\n<JSON>"``), the instant the engine had it due at when it was saved and
the stamp of what that instant was computed from: ``b"<due µs since the epoch, or -> <stamp>"``.
A load that trusts the note keeps the incident frozen (``escalation/live/frozen.py``) and
schedules it from the note alone.

Invariants:

- A note is written only for an open incident without engagements (other agreements' clocks
  running under it): its due instants then depend on the incident and its own agreement revision
  only. The instant is ``Engine.due_of`` at the end of the batch that saved it; a batch that only
  read an incident leaves its value, and so its due instant, as it was.
- The stamp digests the revision's content (the agreement as loaded) and the versions of the
  code that turns it into instants (escalation's and the ``holidays`` package's). A note is
  trusted only when a loaded revision has its stamp; otherwise (an agreement file edited under
  the same revision, another version of escalation, a value saved before notes existed) the
  incident is decoded and scheduled as before. Either way it is scheduled at the same instant,
  so outputs do not depend on notes. A release that changes when deadlines fall changes its
  version (every note it finds is then recomputed).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version

from escalation.core.contract.compiled import CompiledAgreement
from escalation.core.contract.registry import Registry
from escalation.core.engine import Engine
from escalation.core.time.periods import to_dt, to_us

#: what a load cannot use: no note, or one it does not trust
UNKNOWN = object()


def _code_versions() -> bytes:
    found = []
    for package in ("escalation", "holidays"):
        try:
            found.append(version(package))
        except PackageNotFoundError:  # running from a source tree that is not installed
            found.append("unknown")
    return "|".join(found).encode()


class SavedDues:
    """Notes of due instants for the open incidents of one registry (see the module docstring)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._code = _code_versions()
        self._stamps: dict[tuple[str, int], bytes] = {}  # (agreement, revision) -> stamp; never replaced
        self._known: frozenset[bytes] = frozenset()
        self._generation = -1                           # the registry's, when _known was made

    def stamp(self, compiled: CompiledAgreement) -> bytes:
        """The stamp of what an incident under ``compiled`` is timed by (16 hex digits)."""
        key = (compiled.id, compiled.revision)
        stamp = self._stamps.get(key)
        if stamp is None:
            digest = hashlib.blake2b(self._code + b"\n" + compiled.agreement.model_dump_json().encode(), digest_size=8)
            stamp = self._stamps[key] = digest.hexdigest().encode()
        return stamp

    def note(self, engine: Engine, ticket: str) -> bytes:
        """The note to save with open incident ``ticket`` of ``engine`` (b"": none, see the invariants)."""
        incident = engine.incidents.get(ticket)
        if incident is None or incident.engagements:
            return b""
        due = engine.due_of(ticket)
        stamp = self.stamp(self.registry.get(incident.agreement, incident.revision))
        return b"%s %s" % (b"-" if due is None else b"%d" % to_us(due), stamp)

    def due(self, note: bytes) -> datetime | None | object:
        """The due instant a ``note`` saved (None: nothing due), or ``UNKNOWN`` when it cannot be trusted."""
        instant, _, stamp = note.partition(b" ")
        if not stamp or stamp not in self._trusted():
            return UNKNOWN
        if instant == b"-":
            return None
        try:
            return to_dt(int(instant))
        except (ValueError, OverflowError):  # not an instant's microseconds: decode the incident instead
            return UNKNOWN

    def _trusted(self) -> frozenset[bytes]:
        if self._generation != self.registry.generation:  # a reload added revisions
            self._known = frozenset(self.stamp(compiled) for compiled in self.registry)
            self._generation = self.registry.generation
        return self._known
