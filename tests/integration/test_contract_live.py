"""Live == replay on the real broker for the contract-terms example (DESIGN.md §13, targets and
money): prime/non-prime levels, a maintenance window on a clock, a percentage penalty, caps with
an allocation and a rolling 12 months, a ticket objective with its credit and its earn-back.
Tickets land on several partitions, so the objective's counts are merged by the desk from every
source, as its credit and earn-back are."""

from __future__ import annotations

import pytest

from tests.integration.test_live_engine import ROOT, _live_vs_replay, replay_outputs

pytestmark = pytest.mark.integration

AGREEMENT = ROOT / "examples" / "agreements" / "acme-erp-contract.yaml"
EVENTS = ROOT / "examples" / "events" / "acme-erp-contract.jsonl"
UNTIL = "2026-06-01T00:10:00+02:00"  # after the May close and the live period grace (5 min)


def test_live_equals_replay_for_the_contract_terms(broker, namespace, tmp_path):
    expected = replay_outputs(EVENTS, UNTIL, AGREEMENT)
    types = {o["type"] for o in expected}
    assert {"objective.attainment", "objective.no_verdict", "credit.issued", "credit.earned_back",
            "penalty.assessed", "report.published"} <= types
    (credit,) = [o for o in expected if o["type"] == "credit.issued"]
    assert (credit["data"]["objective"], credit["data"]["amount"]) == ("p2-resolution", "1000.00")
    _live_vs_replay(broker, namespace, tmp_path, EVENTS, UNTIL, AGREEMENT, timeout=60)
