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
