"""The one state codec (core/codec.py): every saved record round-trips exactly, defaults stay out."""

from __future__ import annotations

import sys
from array import array
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated

import orjson
import pytest

from escalation.core.codec import record
from escalation.core.contract.term import Termination
from escalation.core.money.assessment import CreditDue
from escalation.core.money.caps import CapBudget
from escalation.core.money.desk import DeskState, item_from_dict, item_to_dict
from escalation.core.reporting.figures import PartialReport
from escalation.core.tickets.incident import PenaltyDue
from escalation.core.events import id_hash
from escalation.core.tickets.state import Alert, ClockState, Incident, Tombstone, remembered, upgrade

T = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=1)))


def _incident() -> Incident:
    clock = ClockState("paused", T, T + timedelta(minutes=5), timedelta(minutes=3, microseconds=7), cycle=2,
                       pauses=[[T, T + timedelta(minutes=1)], [T + timedelta(minutes=4), None]],
                       fired={"warning@75%": T}, repeats={"l2": 1}, breached_at=T, stops=1, note="pause",
                       alert=Alert(1, [{"type": "team", "id": "ops"}], ["l1"], T, "alice"), alerts=1)
    inc = Incident("INC-1", "acme-erp", 3, "P1", "erp-prod", T, T + timedelta(hours=1), clocks={"response": clock},
                   vendor="sap", obligations={"o": {"status": "running"}})
    inc.remember("e-1", 11)
    inc.remember("e-2", 2**64 - 1)
    inc.engagements = [Incident("INC-1", "sap-uc", 1, "P1", "erp-prod", T, T)]
    return inc


RECORDS = [
    _incident(),
    _incident().tombstone(),
    ClockState("running", T, T),
    PenaltyDue("src", "acme-erp", 3, "r1", "INC-1", "resolution", 1, "P1", T, Decimal("1250.50")),
    CreditDue("acme-erp", 3, "avail", 0, 1, "2026-03", 99.123456789, T),
    PartialReport("acme-erp", "2026-03", T, {"opened": {"P1": 2}, "slos": [1.5, None]}),
    Termination("acme-erp", 3, "t-1", T, "customer"),
    CapBudget({"2026-03": Decimal("10.05")}, {"2026-03": {"r1": Decimal("0.01")}}),
    DeskState(CapBudget(), {"2026-03": {"start_us": 1, "parts": {}}}, 5, {"id": {"at_us": 1}}, {"2026-03": ["a"]}),
]


@pytest.mark.parametrize("value", RECORDS, ids=lambda v: type(v).__name__)
def test_every_record_round_trips_through_json(value):
    saved = orjson.loads(orjson.dumps(value.to_dict()))
    assert type(value).from_dict(saved) == value


def test_fields_at_their_default_are_left_out_and_read_back_as_defaults():
    saved = ClockState("running", T, T).to_dict()
    assert saved == {"status": "running", "cycle_start": T.isoformat(), "checkpoint": T.isoformat()}
    assert ClockState.from_dict(saved).elapsed == timedelta(0) and ClockState.from_dict(saved).alert is None


def test_decoding_is_a_copy_never_shared_with_the_saved_data():
    saved = _incident().to_dict()
    loaded = Incident.from_dict(saved)
    loaded.obligations["o"]["status"] = "stopped"
    loaded.clocks["response"].alert.recipients[0]["id"] = "other"
    assert saved["obligations"]["o"]["status"] == "running"
    assert saved["clocks"]["response"]["alert"]["recipients"][0]["id"] == "ops"


def test_a_missing_required_field_is_named():
    with pytest.raises(KeyError, match="Termination: missing field 'by'"):
        Termination.from_dict({"agreement": "a", "revision": 1, "id": "t", "at": T.isoformat()})


def test_desk_records_carry_their_kind_and_ignore_routing_keys():
    due = RECORDS[3]
    rec = {**item_to_dict(due), "src": 3}
    assert rec["kind"] == "penalty" and item_from_dict(rec) == due
    with pytest.raises(ValueError, match="unknown desk record kind 'refund'"):
        item_from_dict({"kind": "refund"})
    with pytest.raises(TypeError):
        item_to_dict(object())


def test_arrays_keep_their_typecode():
    @record
    @dataclass(slots=True)
    class Rings:
        ids: Annotated[array, "Q"] = field(default_factory=lambda: array("Q"))
        sums: list[Annotated[array, "d"]] = field(default_factory=list)

    value = Rings(array("Q", [2**63]), [array("d", [0.5, 1.25])])
    back = Rings.from_dict(orjson.loads(orjson.dumps(value.to_dict())))
    assert back == value and back.ids.typecode == "Q" and back.sums[0].typecode == "d"


def test_state_saved_with_the_input_ids_themselves_loads_with_their_digests():
    # the form saved before stop 10: ids as text, content digests alongside (0 = not recorded)
    old = {"opened_at": T.isoformat(), "seen": ["e-1", "e-2", "e-3"], "digests": [11, 12]}
    tomb = Tombstone.from_dict(upgrade(old))
    assert tomb.to_dict()["inputs"] == [id_hash("e-1"), 11, id_hash("e-2"), 12, id_hash("e-3"), 0]
    assert [remembered(tomb.inputs, i) for i in ("e-1", "e-2", "e-3", "e-4")] == [11, 12, 0, None]
    incident = Incident.from_dict(upgrade({**_incident().to_dict(), "seen": ["e-9"], "digests": [7]}))
    assert remembered(incident.inputs, "e-9") == 7 and remembered(incident.inputs, "e-1") is None


def test_remembered_counts_an_id_only_where_a_pair_starts():
    # the packed inputs are (id hash, content digest) words: an id hash equal to some content
    # digest, or to bytes straddling two words, is not a hit
    first = id_hash("e-1")
    straddling = array("Q", bytes(12) + first.to_bytes(8, sys.byteorder) + bytes(12)).tolist()
    inputs = Incident.from_dict({**_incident().to_dict(), "inputs": straddling}).inputs
    assert first.to_bytes(8, sys.byteorder) in inputs and remembered(inputs, "e-1") is None
    inputs = Incident.from_dict({**_incident().to_dict(), "inputs": [5, first, first, 9]}).inputs
    assert remembered(inputs, "e-1") == 9
    tomb = Tombstone.from_dict({"opened_at": T.isoformat(), "inputs": [first, 2**64 - 1]})
    assert remembered(tomb.inputs, "e-1") == 2**64 - 1 and tomb.to_dict()["inputs"] == [first, 2**64 - 1]


@pytest.mark.parametrize("written", ["2026-02-28T18:03:48-05:00", "2026-03-01T00:00:00.000001+00:00",
                                     "1970-01-01T05:30:15.500000+05:30:15", "2199-12-31T23:59:59.999999-14:00"])
def test_a_tombstone_keeps_its_opening_instant_as_written_and_its_inputs(written):
    # packed in one bytes object; saved exactly as the record it replaced (event times lie in
    # [1970, 2200) UTC, DESIGN.md §10: the edges of that window, odd offsets)
    saved = {"opened_at": written, "inputs": [id_hash("e-1"), 3, id_hash("e-2"), 0]}
    tomb = Tombstone.from_dict(saved)
    assert tomb.to_dict() == saved and Tombstone.from_dict(orjson.loads(orjson.dumps(tomb.to_dict()))) == tomb
    assert tomb.opened_at.isoformat() == written and tomb.opened_at == datetime.fromisoformat(written)
    assert remembered(tomb.inputs, "e-1") == 3 and remembered(tomb.inputs, "e-2") == 0
    empty = Tombstone.from_dict({"opened_at": written})
    assert empty.to_dict() == {"opened_at": written} and remembered(empty.inputs, "e-1") is None
    assert isinstance(tomb, bytes) and not hasattr(tomb, "__dict__")
