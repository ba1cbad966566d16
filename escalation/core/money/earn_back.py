"""Earn-back (DESIGN.md §13): a credit returned when the following periods attain enough.

A ``tiered_credit`` with ``earn_back: {periods: N, at_least: X}``: a credit issued (amount above
zero, after caps) for period P opens a chain; at the close of each following reporting period the
chain looks at the same SLO's ``slo.attainment`` or the same objective's attainment in that
period. At least X: the period counts; after N such periods in a row ``credit.earned_back``
returns the credit (amount = the credit issued, ``time`` = the N-th period's end). Below X, no
data or no verdict: the chain is forfeited (nothing is emitted; the credit stays).

Invariants: chains are plain JSON-ready dicts kept in the desk's per-agreement state (the live
engine persists them with the desk); each credit opens at most one chain (keyed by its output
id) and each chain ends exactly once.
"""

from __future__ import annotations

from datetime import datetime

from escalation.core.contract.compiled import CompiledAgreement
from escalation.core.outputs import Output, OutputType, output


def register(compiled: CompiledAgreement, chains: list[dict], out: Output) -> None:
    """Open a chain for a ``credit.issued`` whose remedy carries ``earn_back``."""
    d = out.data
    index, remedy = _remedy(compiled, d["remedy"])
    if remedy is None or remedy.earn_back is None or d["amount"] in ("0", "0.00"):
        return
    if any(c["credit"] == out.id for c in chains):
        return
    measure = "slo" if remedy.slo is not None else "objective"
    chains.append({"credit": out.id, "remedy": remedy.id, "measure": measure, "target": d[measure],
                   "period": d["period"], "amount": d["amount"], "attained": {}})


def _remedy(compiled: CompiledAgreement, remedy_id: str):
    for i, r in enumerate(compiled.agreement.remedies):
        if r.id == remedy_id:
            return i, r
    return None, None


def slo_values(fig: dict) -> dict[str, float | None]:
    """SLO id -> attainment in a merged report figure (None: no data)."""
    return {e["slo"]: e.get("attainment") for e in fig.get("slos", [])}


def evaluate(compiled: CompiledAgreement, chains: list[dict], label: str, values: dict[str, dict],
             at: datetime) -> tuple[list[Output], list[dict]]:
    """(``credit.earned_back`` outputs, chains still running) after period ``label`` closed.
    ``values``: {"slo": {id: attainment | None}, "objective": {id: attainment | None}}."""
    outputs, kept = [], []
    for chain in chains:
        if chain["period"] >= label:
            kept.append(chain)
            continue
        index, remedy = _remedy(compiled, chain["remedy"])
        value = values[chain["measure"]].get(chain["target"])
        if remedy is None or remedy.earn_back is None or value is None or value < remedy.earn_back.at_least:
            continue  # forfeited
        chain["attained"][label] = value
        if len(chain["attained"]) < remedy.earn_back.periods:
            kept.append(chain)
        else:
            outputs.append(_notice(compiled, index, remedy, chain, at))
    return outputs, kept


def _notice(compiled: CompiledAgreement, index: int, remedy, chain: dict, at: datetime) -> Output:
    eb, currency = remedy.earn_back, compiled.agreement.currency
    months = sorted(chain["attained"])
    data = {
        "agreement": compiled.id, "revision": compiled.revision, "remedy": remedy.id,
        chain["measure"]: chain["target"], "period": chain["period"], "earned_in": months,
        "amount": chain["amount"], "currency": currency,
        "summary": (f"{chain['target']}: credit {chain['amount']} {currency} for {chain['period']} earned back "
                    f"({eb.periods} periods at or above {eb.at_least:g}%)"),
        "explain": {
            "reason": f"each of the {eb.periods} periods after {chain['period']} attained at least {eb.at_least:g}%",
            "clause": f"remedies[{index}].earn_back", "at_least": eb.at_least,
            "attainments": {m: chain["attained"][m] for m in months}, "credit": chain["credit"],
        },
    }
    return output(compiled.source, OutputType.CREDIT_EARNED_BACK, compiled.id, at,
                      (remedy.id, chain["target"], chain["period"]), data)
