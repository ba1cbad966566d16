"""Parties and customer obligations (DESIGN.md §13) with hand-computed instants and amounts.

Agreements: a small customer agreement ``cust`` (P1: response 15m, resolution 4h, 24x7;
resolution penalty 300.00; obligation confirm-resolution: closed within 1bd of resolved, business
08:00-18:00 UTC), an OLA ``net`` (scope group network: response 10m, resolution 2h with a 50 %
warning, penalty 100.00) and a UC ``tel`` (scope pending_vendor + vendor telco: resolution 4h,
penalty 250.00). 2026-03-03 is a Tuesday; all times UTC.
"""

from __future__ import annotations

import pytest

from escalation.agreement.models import Agreement
from escalation.core.contract.registry import Registry
from tests.helpers import Events, run

OPEN = "2026-03-03T09:00:00Z"
CLOCKS = {"response": {"starts": "opened", "stops": "acknowledged"},
          "resolution": {"starts": "opened", "stops": "resolved", "pause_when": ["pending_customer", "pending_vendor"]}}


def _agreement(id_, kind="Agreement", targets=(), remedy=None, **extra) -> dict:
    return {"apiVersion": "escalation/v1", "kind": kind, "id": id_, "revision": 1, "timezone": "UTC",
            "calendars": {"always": {"kind": "24x7"}, "business": {"hours": {"mon-fri": "08:00-18:00"}}},
            "services": {"desk": {}}, "priorities": ["P1"], "clocks": extra.pop("clocks", CLOCKS),
            "targets": [{"clock": c, "priority": "P1", "within": w, "calendar": "always", **x} for c, w, x in targets],
            "remedies": [] if remedy is None else [{"id": f"{id_}-pen", "kind": "per_breach", "clock": "resolution",
                                                    "amount": remedy}], **extra}


CUST = _agreement("cust", targets=[("response", "15m", {}), ("resolution", "4h", {})], remedy="300.00",
                  obligations=[{"id": "confirm-resolution", "party": "customer", "starts": "resolved",
                                "stops": "closed", "within": "1bd", "calendar": "business"}])
NET = _agreement("net", "OperationalLevelAgreement", [("response", "10m", {}), ("resolution", "2h", {"warn_at": [0.5]})],
                 "100.00", scope={"group": "network"}, supports=["cust"])
TEL = _agreement("tel", "UnderpinningContract", [("resolution", "4h", {})], "250.00",
                 scope={"status": "pending_vendor", "vendor": "telco"},
                 clocks={"resolution": {"starts": "opened", "stops": "resolved"}})


def _reg(*dicts) -> Registry:
    return Registry([Agreement.model_validate(d) for d in (dicts or (CUST, NET, TEL))])


def _open(ev: Events, **fields) -> Events:
    return ev.add("opened", OPEN, agreement="cust", service="desk", priority="P1", **fields)


def _rows(outputs) -> list[tuple]:
    """(time, type, agreement, clock or obligation, amount/elapsed/excused) per output."""
    rows = []
    for o in outputs:
        d = o["data"]
        extra = {"sla.met": d.get("elapsed"), "penalty.assessed": (d.get("amount"), d.get("direction")),
                 "sla.breached": d.get("excused", False), "sla.warning": d.get("fraction")}.get(o["type"])
        rows.append((o["time"][11:16] if o["time"].startswith("2026-03-03") else o["time"][:16], o["type"],
                     o["source"].split("/")[1].split("@")[0], d.get("clock") or d.get("obligation"), extra))
    return rows


SCENARIOS = [
    # assigned to network at 09:02 (OLA opens: response 10m, resolution 2h), acknowledged at 09:08:
    # customer response met in 8m, OLA response met in 6m; reassigned away at 09:32: OLA resolution
    # stops met at 30m; resolved 10:00: customer resolution met at 1h
    ("ola_met", lambda e: _open(e).add("assigned", "2026-03-03T09:02:00Z", group="network")
        .add("acknowledged", "2026-03-03T09:08:00Z").add("assigned", "2026-03-03T09:32:00Z", group="desk")
        .add("resolved", "2026-03-03T10:00:00Z"), "2026-03-03T12:00:00Z",
     [("09:08", "sla.met", "cust", "response", "PT8M"), ("09:08", "sla.met", "net", "response", "PT6M"),
      ("09:32", "sla.met", "net", "resolution", "PT30M"), ("10:00", "sla.met", "cust", "resolution", "PT1H")]),
    # opened straight into network: the OLA starts at 09:00; not acknowledged -> OLA response breach
    # at 09:10, customer response at 09:15; OLA resolution warns at 1h (10:00), breaches at 2h (11:00)
    # with the internal chargeback 100.00 (payable); the ticket stays with the team
    ("ola_breach", lambda e: _open(e, group="network"), "2026-03-03T11:00:00Z",
     [("09:10", "sla.breached", "net", "response", False), ("09:15", "sla.breached", "cust", "response", False),
      ("10:00", "sla.warning", "net", "resolution", 0.5), ("11:00", "sla.breached", "net", "resolution", False),
      ("11:00", "penalty.assessed", "net", "resolution", ("100.00", "payable"))]),
    # in network 09:00-09:40 (40m), away, back at 10:00 (resume: 40m kept), then the 2h breach
    # comes 80m later at 11:20; the 50 % warning at 1h of counted time = 10:20
    ("ola_resume", lambda e: _open(e, group="network").add("acknowledged", "2026-03-03T09:05:00Z")
        .add("assigned", "2026-03-03T09:40:00Z", group="desk").add("assigned", "2026-03-03T10:00:00Z", group="network"),
     "2026-03-03T11:20:00Z",
     [("09:05", "sla.met", "cust", "response", "PT5M"), ("09:05", "sla.met", "net", "response", "PT5M"),
      ("09:40", "sla.met", "net", "resolution", "PT40M"), ("10:20", "sla.warning", "net", "resolution", 0.5),
      ("11:20", "sla.breached", "net", "resolution", False),
      ("11:20", "penalty.assessed", "net", "resolution", ("100.00", "payable"))]),
    # a group member taking the ticket (assigned to bob, group unchanged) acknowledges for the OLA
    ("ola_taken", lambda e: _open(e, group="network").add("assigned", "2026-03-03T09:04:00Z", group="network",
                                                          assignee="bob"), "2026-03-03T09:05:00Z",
     [("09:04", "sla.met", "net", "response", "PT4M")]),
    # waits on telco 09:30-14:00: UC resolution 4h breaches at 13:30 (250.00 receivable); the
    # customer's resolution is paused meanwhile (30m before, resumed at 14:00 -> breach at 17:30)
    ("uc_breach", lambda e: _open(e).add("acknowledged", "2026-03-03T09:05:00Z")
        .add("status_changed", "2026-03-03T09:30:00Z", status="pending_vendor", vendor="telco")
        .add("status_changed", "2026-03-03T14:00:00Z", status="in_progress"), "2026-03-03T17:30:00Z",
     [("09:05", "sla.met", "cust", "response", "PT5M"), ("13:30", "sla.breached", "tel", "resolution", False),
      ("13:30", "penalty.assessed", "tel", "resolution", ("250.00", "receivable")),
      ("17:30", "sla.breached", "cust", "resolution", False),
      ("17:30", "penalty.assessed", "cust", "resolution", ("300.00", None))]),
    # waiting on another vendor is not telco's time: the UC never starts
    ("uc_other_vendor", lambda e: _open(e).add("acknowledged", "2026-03-03T09:05:00Z")
        .add("status_changed", "2026-03-03T09:30:00Z", status="pending_vendor", vendor="acme-cables")
        .add("resolved", "2026-03-03T15:00:00Z"), "2026-03-03T15:00:00Z",
     [("09:05", "sla.met", "cust", "response", "PT5M"), ("15:00", "sla.met", "cust", "resolution", "PT30M")]),
    # telco answers after 1h (10:30): UC resolution met in 1h
    ("uc_met", lambda e: _open(e).add("acknowledged", "2026-03-03T09:05:00Z")
        .add("status_changed", "2026-03-03T09:30:00Z", status="pending_vendor", vendor="telco")
        .add("status_changed", "2026-03-03T10:30:00Z", status="in_progress"), "2026-03-03T10:31:00Z",
     [("09:05", "sla.met", "cust", "response", "PT5M"), ("10:30", "sla.met", "tel", "resolution", "PT1H")]),
    # resolved at 12:00 (Tue): confirm-resolution needs 1bd = 10h of business time: 6h on Tuesday
    # (12:00-18:00), 4h on Wednesday (08:00-12:00) -> missed at Wed 12:00; closed Thu: nothing else
    ("obligation_missed", lambda e: _open(e).add("acknowledged", "2026-03-03T09:05:00Z")
        .add("resolved", "2026-03-03T12:00:00Z").add("closed", "2026-03-05T09:00:00Z"), "2026-03-06T00:00:00Z",
     [("09:05", "sla.met", "cust", "response", "PT5M"), ("12:00", "sla.met", "cust", "resolution", "PT3H"),
      ("2026-03-04T12:00", "obligation.missed", "cust", "confirm-resolution", None)]),
    # closed in time (Wed 09:00, before the Wed 12:00 due): no obligation output at all
    ("obligation_kept", lambda e: _open(e).add("acknowledged", "2026-03-03T09:05:00Z")
        .add("resolved", "2026-03-03T12:00:00Z").add("closed", "2026-03-04T09:00:00Z"), "2026-03-06T00:00:00Z",
     [("09:05", "sla.met", "cust", "response", "PT5M"), ("12:00", "sla.met", "cust", "resolution", "PT3H")]),
    # resolved at 12:00 after 3h, confirmation missed Wed 12:00, reopened Wed 13:00 (resume: 3h
    # kept): the resolution breach 1h later (Wed 14:00) happens while the obligation is missed:
    # excused, no penalty
    ("excused", lambda e: _open(e).add("acknowledged", "2026-03-03T09:05:00Z")
        .add("resolved", "2026-03-03T12:00:00Z").add("reopened", "2026-03-04T13:00:00Z"), "2026-03-04T15:00:00Z",
     [("09:05", "sla.met", "cust", "response", "PT5M"), ("12:00", "sla.met", "cust", "resolution", "PT3H"),
      ("2026-03-04T12:00", "obligation.missed", "cust", "confirm-resolution", None),
      ("2026-03-04T14:00", "sla.breached", "cust", "resolution", True)]),
]


@pytest.mark.parametrize("name, build, until, expected", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_parties_and_obligations(name, build, until, expected):
    outputs, rejects, _ = run(build(Events()), until=until, reg=_reg())
    assert rejects == []
    rows = [r for r in _rows(outputs) if not r[1].startswith("escalation.")]
    assert rows == expected


def test_engagement_alert_is_acknowledged_by_its_own_dedup_key():
    # the OLA's 50 % warning (10:00) opens an alert on net/INC-1/resolution; dave acknowledges it
    ev = _open(Events(), group="network").add("acknowledged", "2026-03-03T09:05:00Z")
    ev.lines.append('{"id": "n1", "type": "notification.acknowledged", "time": "2026-03-03T10:05:00Z", '
                    '"ticket": "INC-1", "dedup_key": "net/INC-1/resolution", "by": "dave"}')
    outputs, rejects, _ = run(ev, until="2026-03-03T10:06:00Z", reg=_reg())
    assert rejects == []
    acks = [(o["time"][11:16], o["source"], o["data"]["dedup_key"], o["data"]["by"]) for o in outputs
            if o["type"] == "escalation.acknowledged"]
    assert acks == [("10:05", "escalation/net@1", "net/INC-1/resolution", "dave")]


def test_unknown_engagement_clock_and_opening_under_an_ola_are_rejected():
    ev = _open(Events())
    ev.lines.append('{"id": "n1", "type": "notification.acknowledged", "time": "2026-03-03T10:05:00Z", '
                    '"ticket": "INC-1", "dedup_key": "net/INC-1/resolution", "by": "dave"}')
    ev.add("opened", OPEN, ticket="INC-2", agreement="net", service="desk", priority="P1")
    _, rejects, _ = run(ev, reg=_reg())
    reasons = [r["reason"] for r in rejects]
    assert "unknown dedup_key 'net/INC-1/resolution'" in reasons[0] and "none started yet" in reasons[0]
    assert "is an OperationalLevelAgreement" in reasons[1]


def test_without_supporting_agreements_the_incident_state_has_no_party_keys():
    outputs, _, _ = run(_open(Events(), group="network"), until="2026-03-03T09:20:00Z", reg=_reg(CUST))
    assert {o["source"] for o in outputs} == {"escalation/cust@1"}
