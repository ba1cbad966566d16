"""Stored table values are compressed with the shipped dictionary; values stored before still read."""

from __future__ import annotations

import zlib

import orjson
import pytest

from escalation.cli.common import load_registry
from escalation.core.events import Rejected, decode_event
from escalation.live import value_compression as vc
from escalation.live.journal import Journal
from escalation.live.partitions import Partitions
from escalation.live.store import INCIDENTS, MemoryStore, note_of, owned_by, pack, unpack
from escalation.paths import ROOT

EXAMPLES = ROOT / "examples"


def _open_incident_values() -> list[bytes]:
    """The stored forms of the example's incidents after its first events (one partition)."""
    store = MemoryStore()
    parts = Partitions(load_registry([str(EXAMPLES / "agreements")]), store, 1)
    for line in [ln for ln in (EXAMPLES / "events" / "acme-erp.jsonl").read_bytes().splitlines() if ln.strip()][:12]:
        try:
            parts.step(0, decode_event(line))
        except Rejected:
            continue
    parts.end()
    return [raw for _p, raw in store.tables[INCIDENTS].values() if raw]


def test_an_open_incident_is_stored_compressed_and_reads_back_whole():
    values = _open_incident_values()
    assert values
    for raw in values:
        head, _, body = raw.partition(b"\n")
        assert body.startswith(vc.MARKER)
        json = vc.expand(body)
        assert json.startswith(b'{"incident":')
        assert len(body) * 3 < len(json)  # the dictionary makes it several times smaller
        assert unpack(raw)[1] == orjson.loads(json)
        assert note_of(raw) == head.partition(b" ")[2] and owned_by(raw, 0)


def test_a_value_stored_as_plain_json_before_still_reads():
    data = {"incident": {"ticket": "INC-1", "text": "x" * 300}}
    old = b"2 123 abc\n" + orjson.dumps(data)
    assert unpack(old) == (2, data) and note_of(old) == b"123 abc"
    assert unpack(pack(2, data, b"123 abc")) == (2, data)
    assert pack(2, data, b"123 abc") != old  # now compressed


def test_short_bodies_stay_json_and_an_unknown_dictionary_is_refused():
    assert pack(0, {"a": 1}) == b'0\n{"a":1}'
    assert vc.compress(b"[" + b"1," * 200 + b"1]").startswith(vc.MARKER)
    with pytest.raises(ValueError, match="unknown dictionary"):
        unpack(b"0\n~9" + vc.compress(b"{}" * 100)[2:])


class _Table(dict):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


def test_the_journal_restores_compressed_values_and_reads_journals_written_before():
    incidents, journal_table = _Table(INCIDENTS), _Table("journal")
    journal = Journal("inputs", journal_table, [incidents])
    values = _open_incident_values()
    writes = [(incidents, 0, f"K{i}", raw) for i, raw in enumerate(values)]
    (_t, p, key, record), = journal.records(writes)
    journal_table[key] = record
    restored: dict = {}
    assert journal.restore({0}, lambda table, p, k, v: restored.__setitem__(k, v)) == len(values)
    assert restored == {k: v for _t, _p, k, v in writes}
    # a journal written before values were compressed: JSON values as UTF-8 strings
    text = b'0\n{"incident":{"summary":"caf\xc3\xa9"}}'
    journal_table[key] = b"0\n" + zlib.compress(orjson.dumps([[INCIDENTS, "OLD", text.decode()]]))
    journal.discard()
    restored.clear()
    journal.restore({0}, lambda table, p, k, v: restored.__setitem__(k, v))
    assert restored == {"OLD": text}


def test_threads_compress_with_contexts_of_their_own():
    from concurrent.futures import ThreadPoolExecutor

    bodies = [orjson.dumps({"incident": {"ticket": f"INC-{i}", "summary": "x" * (100 + i)}}) for i in range(200)]
    with ThreadPoolExecutor(4) as pool:
        packed = list(pool.map(vc.compress, bodies))
        assert list(pool.map(vc.expand, packed)) == bodies
