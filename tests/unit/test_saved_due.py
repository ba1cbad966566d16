"""An open incident is saved with its next due instant; a load trusts it only under the same stamp."""

from __future__ import annotations

from datetime import timedelta

import pytest

from escalation.cli.common import load_registry
from escalation.core.events import Rejected, Tick, decode_event
from escalation.live.partitions import Partitions
from escalation.live.saved_due import UNKNOWN, SavedDues
from escalation.live.store import INCIDENTS, MemoryStore, TableStore, note_of, owned_by, pack, unpack
from escalation.paths import ROOT

EXAMPLES = ROOT / "examples"
# (agreements, events, how many events: while every incident read is still open)
CASES = [(EXAMPLES / "agreements", EXAMPLES / "events" / "acme-erp.jsonl", 12),        # plain incidents
         (EXAMPLES / "agreements" / "contracts", EXAMPLES / "events" / "contracts.jsonl", 8)]  # with engagements


def _opened(agreements, events, upto: int) -> tuple[Partitions, MemoryStore]:
    """One partition after the first ``upto`` events (tickets only), as one batch."""
    store = MemoryStore()
    parts = Partitions(load_registry([str(agreements)]), store, 1)
    for line in [ln for ln in events.read_bytes().splitlines() if ln.strip()][:upto]:
        try:
            parts.step(0, decode_event(line))
        except Rejected:
            continue
    parts.end()
    return parts, store


def _open_keys(parts: Partitions) -> list[str]:
    return sorted(dict.keys(parts.engine(0).incidents))


def _outputs(stepped) -> list[tuple]:
    return [(o.type, o.time, o.subject, o.data) for o in stepped.outputs]


@pytest.mark.parametrize(("agreements", "events", "upto"), CASES)
def test_a_reload_schedules_open_incidents_from_their_notes_as_decoding_would(agreements, events, upto, monkeypatch):
    parts, store = _opened(agreements, events, upto)
    keys = _open_keys(parts)
    dues = {k: parts.engine(0).due_of(k) for k in keys}
    assert keys and any(d is not None for d in dues.values())
    noted = {k for k in keys if note_of(store.tables[INCIDENTS][k][1])}
    engaged = {k for k in keys if parts.engine(0).incidents[k].engagements}
    assert noted == set(keys) - engaged  # every open incident has a note, unless others' clocks run under it

    decoded = []
    monkeypatch.setattr(MemoryStore, "load", staticmethod(lambda stored: decoded.append(stored) or unpack(stored)[1]))
    reloaded = Partitions(parts.registry, store, 1)
    engine = reloaded.engine(0)
    assert len(decoded) == len(engaged)  # only those without a note were decoded while loading
    assert engine.incidents.frozen() == len(keys)
    assert {k: engine.due_of(k) for k in keys} == dues

    later = Tick(max(d for d in dues.values() if d is not None) + timedelta(days=40))
    want = _outputs(parts.step(0, later))
    assert want and _outputs(reloaded.step(0, later)) == want


def test_a_note_under_another_stamp_is_not_trusted_and_the_incident_is_decoded():
    parts, store = _opened(*CASES[0])
    keys = _open_keys(parts)
    dues = {k: parts.engine(0).due_of(k) for k in keys}
    table = store.tables[INCIDENTS]
    for key in keys:  # as if saved by another version, or under an agreement edited in place
        p, raw = table[key]
        instant, _, _stamp = note_of(raw).partition(b" ")
        table[key] = (p, pack(p, unpack(raw)[1], instant + b" 0123456789abcdef"))
    reloaded = Partitions(parts.registry, store, 1)
    engine = reloaded.engine(0)
    assert {k: engine.due_of(k) for k in keys} == dues  # decoded and scheduled as before
    assert engine.incidents.frozen() == len(keys)


def test_notes_read_back_and_refuse_what_they_cannot_vouch_for():
    parts, store = _opened(*CASES[0])
    dues = SavedDues(parts.registry)
    key = next(k for k in _open_keys(parts) if parts.engine(0).due_of(k) is not None)
    note = dues.note(parts.engine(0), key)
    assert dues.due(note) == parts.engine(0).due_of(key)
    stamp = note.partition(b" ")[2]
    assert dues.due(b"- " + stamp) is None  # saved with nothing due
    for bad in (b"", b"123", b"123 ffffffffffffffff", b"x1 " + stamp, b"9" * 30 + b" " + stamp):
        assert dues.due(bad) is UNKNOWN
    assert dues.note(parts.engine(0), "NO-SUCH-TICKET") == b""


def test_a_stored_form_carries_its_partition_and_note_on_its_first_line():
    raw = pack(1, {"a": 1}, b"42 abc")
    assert raw == b'1 42 abc\n{"a":1}' and unpack(raw) == (1, {"a": 1}) and note_of(raw) == b"42 abc"
    assert note_of(pack(3, [1])) == b"" and unpack(pack(3, [1])) == (3, [1])
    assert owned_by(raw, 1) and not owned_by(raw, 11) and not owned_by(pack(10, 1), 1) and owned_by(pack(10, 1), 10)
    table = TableStore({INCIDENTS: {}})
    table.put(INCIDENTS, 1, "A", {"x": 1}, b"- s")
    table.put(INCIDENTS, 10, "B", {"x": 2})
    for _, p, key, stored in table.changes():
        table.tables[INCIDENTS][key] = stored
    assert [k for k, _ in table.entries(INCIDENTS, 1)] == ["A"] and table.get(INCIDENTS, "B") == {"x": 2}
