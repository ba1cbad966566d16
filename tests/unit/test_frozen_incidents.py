"""FrozenIncidents: a live engine's open incidents kept as their stored bytes between batches."""

from __future__ import annotations

from escalation.live.frozen import FrozenIncidents
from escalation.live.store import INPUT_TABLES, MemoryStore, TableStore
from tests.unit.test_codec import _incident


def test_a_frozen_incident_decodes_equal_to_what_was_stored_and_stays_decoded_until_frozen_again():
    for store in (MemoryStore(), TableStore({name: {} for name in INPUT_TABLES})):
        incident = _incident()
        stored = store.put("incidents", 1, "INC-1", {"incident": incident.to_dict()})
        if isinstance(store, TableStore):
            assert store.changes()[0][3] is stored  # the very object the table gets: shared
        incidents = FrozenIncidents(store.load)
        incidents.freeze("INC-1", stored)
        assert incidents.frozen() == 1 and dict.__getitem__(incidents, "INC-1") is stored
        thawed = incidents["INC-1"]
        assert thawed == incident and incidents.get("INC-1") is thawed and incidents.frozen() == 0
        assert incidents.items() == [("INC-1", thawed)] and incidents.values() == [thawed]
        incidents.refreeze()  # read only: frozen again with the bytes it came from
        assert dict.__getitem__(incidents, "INC-1") is stored
        assert incidents.get("INC-2") is None and incidents.get("INC-2", 5) == 5


def test_refreeze_leaves_changed_and_removed_incidents_alone():
    store = MemoryStore()
    a, b = _incident(), _incident()
    b.ticket = "INC-2"
    incidents = FrozenIncidents(store.load)
    for inc in (a, b):
        incidents.freeze(inc.ticket, store.put("incidents", 0, inc.ticket, {"incident": inc.to_dict()}))
    changed = incidents["INC-1"]
    changed.priority = "P2"
    newer = store.put("incidents", 0, "INC-1", {"incident": changed.to_dict()})
    incidents.freeze("INC-1", newer)  # the batch's write of the changed one
    incidents["INC-2"]
    del incidents["INC-2"]  # closed in the batch: a tombstone now, not an open incident
    incidents.refreeze()
    assert dict.__getitem__(incidents, "INC-1") is newer and "INC-2" not in incidents
    assert incidents["INC-1"].priority == "P2"


def test_a_store_buffer_of_another_type_is_frozen_as_bytes():
    store = MemoryStore()
    incidents = FrozenIncidents(store.load)
    incidents.freeze("INC-1", bytearray(store.put("incidents", 0, "INC-1", {"incident": _incident().to_dict()})))
    assert incidents.frozen() == 1 and incidents["INC-1"] == _incident()


def _replayed(agreements, events, engine=None) -> tuple[list, list, object]:
    import orjson

    from escalation.cli.common import load_registry
    from escalation.replay import replay

    registry = load_registry([str(agreements)])
    engine = engine(registry) if engine else None
    outputs, dead = [], []
    stats = replay(registry, events.read_bytes().splitlines(), lambda o: outputs.append(orjson.dumps(o.cloudevent())),
                   dead.append, None, engine)
    return outputs, dead, stats


def test_a_replay_with_few_incidents_decoded_gives_the_same_outputs():
    from escalation.core.engine import Engine
    from escalation.live.frozen import CappedIncidents
    from escalation.live.store import load
    from escalation.paths import ROOT
    from escalation.replay import _frozen

    examples = ROOT / "examples"
    for agreements, events in [(examples / "agreements", examples / "events" / "acme-erp.jsonl"),
                               (examples / "agreements" / "contracts", examples / "events" / "contracts.jsonl"),
                               (examples / "agreements", examples / "events" / "acme-erp-contract.jsonl")]:
        plain = _replayed(agreements, events, lambda r: Engine(r, forget_closed=True))
        assert plain[0]
        for cap in (0, 1, 2):
            thawed: list = []

            def counted(stored: bytes, thawed: list = thawed) -> object:
                thawed.append(stored)
                return load(stored)

            def make(registry, cap=cap):
                return Engine(registry, forget_closed=True, incidents=CappedIncidents(counted, _frozen, cap))

            outputs, dead, _ = _replayed(agreements, events, make)
            assert (outputs, dead) == plain[:2], (events.name, cap)
            if cap == 0:  # every incident frozen between lines: each later line about it decodes it again
                assert thawed, events.name
        assert _replayed(agreements, events)[:2] == plain[:2]  # the default replay engine
