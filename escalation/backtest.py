"""Backtests: the same recorded history under two agreement sets, and what changes.

``escalation backtest --agreements A --against B --events FILE`` answers "what would the draft
contract have done (and cost) on last quarter's tickets?" (DESIGN.md §1). Each side is replayed
with its own :class:`~escalation.core.contract.registry.Registry`, built from only that side's paths, so two
revisions of one agreement id never mix: a ticket whose ``agreement`` is X opens under whichever
revision of X its side loaded (the highest valid one, as in any replay). When the two sides name
the agreement differently, ``agreement_map`` ({old: new}) rewrites ``agreement`` on side B's
``ticket.opened`` events before they reach the engine.

Everything below ``replay_side`` is a pure function over typed output lists (``core.outputs.Output``):

- :func:`clock_verdicts` - per (ticket, clock): ``met``, ``breached`` (any cycle breached) or
  absent (no verdict yet: still running, cancelled, no target);
- :func:`escalation_keys` - every ``escalation.triggered``/``escalation.repeated`` keyed by
  (ticket, clock, cycle, policy, level, repeat): what an on-call consumer would be paged for;
- :func:`money_by_period` - ``penalty.assessed`` and ``credit.issued`` totals per period;
- :func:`compare` - the differences, as a :class:`Backtest` with a JSON-ready ``to_dict``.

Money is summed as ``Decimal`` and written as two-place strings (``amounts.money_text``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import orjson

from escalation.core.contract.registry import Registry
from escalation.core.engine import Engine
from escalation.core.money.amounts import ZERO, money_text
from escalation.core.outputs import ESCALATION_TYPES, MONEY_TYPES, Output, OutputType
from escalation.core.reporting.verdicts import clock_key, deciding, verdict_of
from escalation.replay import ReplayStats, replay

# --------------------------------------------------------------------------------------------
# Running one side


@dataclass
class SideRun:
    """One replay: its outputs, dead-letter records, counters and the engine's final state."""

    label: str
    registry: Registry
    outputs: list[Output]
    rejects: list[dict]
    stats: ReplayStats
    engine: Engine

    def agreements(self) -> list[str]:
        return sorted(f"{c.id}@{c.revision}" for c in self.registry)


def rewrite_agreements(lines: Iterable[bytes | str], agreement_map: Mapping[str, str]) -> Iterator[bytes | str]:
    """Yield ``lines`` with ``agreement`` renamed on ``ticket.opened`` events per ``agreement_map``.

    Lines that are not JSON objects, or need no change, pass through byte for byte, so the
    replay rejects (or accepts) them exactly as it would without the mapping.
    """
    if not agreement_map:
        yield from lines
        return
    for line in lines:
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            yield line
            continue
        if (isinstance(event, dict) and event.get("type") == "ticket.opened"
                and event.get("agreement") in agreement_map):
            event["agreement"] = agreement_map[event["agreement"]]
            yield orjson.dumps(event)
        else:
            yield line


def replay_side(label: str, registry: Registry, lines: Iterable[bytes | str], until: datetime | None = None,
                agreement_map: Mapping[str, str] | None = None) -> SideRun:
    """Replay ``lines`` under ``registry`` in memory, keeping the engine for its final state."""
    outputs: list[Output] = []
    rejects: list[dict] = []
    engine = Engine(registry)
    stats = replay(registry, rewrite_agreements(lines, agreement_map or {}), outputs.append, rejects.append,
                   until, engine)
    return SideRun(label, registry, outputs, rejects, stats, engine)


def parse_agreement_map(pairs: Iterable[str]) -> dict[str, str]:
    """``["old=new", ...]`` -> ``{"old": "new"}``; ValueError naming a malformed pair."""
    out: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise ValueError(f"{pair!r}: expected OLD=NEW")
        out[old.strip()] = new.strip()
    return out


def default_agreement_map(a: Registry, b: Registry) -> dict[str, str]:
    """When each side loads exactly one agreement id and they differ: {id of A: id of B}."""
    ids_a, ids_b = a.ids(), b.ids()
    if len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b:
        return {ids_a[0]: ids_b[0]}
    return {}


# --------------------------------------------------------------------------------------------
# Pure views over outputs


@dataclass(frozen=True, slots=True)
class Verdict:
    verdict: str            # met | breached
    time: str               # instant of the deciding output (first breach, else last met), RFC 3339
    priority: str | None
    agreement: str | None
    revision: int | None


def clock_verdicts(outputs: Iterable[Output]) -> dict[tuple[str, str], Verdict]:
    """Per (ticket, clock): ``breached`` if any cycle breached, else ``met`` if a cycle was met."""
    return {key: Verdict(verdict_of(o), o.time.isoformat(), o.data.get("priority"), o.data.get("agreement"),
                         o.data.get("revision"))
            for key, o in deciding(outputs, clock_key).items()}


def verdict_counts(verdicts: Mapping[tuple[str, str], Verdict]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for (_, clock), v in verdicts.items():
        counts[clock][v.verdict] += 1
    return {clock: {"met": c["met"], "breached": c["breached"]} for clock, c in sorted(counts.items())}


def escalation_keys(outputs: Iterable[Output]) -> dict[tuple, Output]:
    """(ticket, clock, cycle, policy, level, repeat) -> the escalation output."""
    out: dict[tuple, Output] = {}
    for o in outputs:
        if o.type in ESCALATION_TYPES:
            d = o.data
            out[(d["ticket"], d.get("clock"), d.get("cycle", 1), d.get("policy"), d.get("level"),
                 d.get("repeat", 0))] = o
    return out


#: the money kind a backtest row names (``kind``) per money output type
MONEY_KIND = {OutputType.PENALTY_ASSESSED: "penalty", OutputType.CREDIT_ISSUED: "credit"}


def money_by_period(outputs: Iterable[Output]) -> dict[tuple[str, str, str], dict]:
    """(kind, period, currency) -> {amount, count, capped}; kind is ``penalty`` or ``credit``."""
    out: dict[tuple[str, str, str], dict] = {}
    for o in outputs:
        if o.type not in MONEY_TYPES:
            continue
        d = o.data
        kind = MONEY_KIND[o.type]
        row = out.setdefault((kind, d["period"], d.get("currency", "")), {"amount": ZERO, "count": 0, "capped": 0})
        row["amount"] += Decimal(d["amount"])
        row["count"] += 1
        row["capped"] += bool(d.get("capped"))
    return out


def penalties_by_ticket(outputs: Iterable[Output]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for o in outputs:
        if o.type is OutputType.PENALTY_ASSESSED:
            out[o.data["ticket"]] += Decimal(o.data["amount"])
    return dict(out)


# --------------------------------------------------------------------------------------------
# Comparison


@dataclass
class Backtest:
    """Differences between side A (baseline) and side B (candidate)."""

    labels: tuple[str, str]
    verdicts: dict[str, dict[str, dict[str, int]]]             # side -> clock -> met/breached
    flips: list[dict]                                           # met <-> breached
    appeared: list[dict]                                        # a verdict on one side only
    escalations: dict[str, int]                                 # a/b triggered/repeated totals
    escalations_added: list[dict]
    escalations_removed: list[dict]
    escalations_retimed: list[dict]
    escalations_by_level: list[dict]
    money: list[dict]                                           # per kind/period/currency
    money_totals: list[dict]                                    # per kind/currency
    penalty_changes: list[dict]                                 # per ticket
    sides: dict[str, dict] = field(default_factory=dict)        # run facts (filled by the caller)

    def flip_counts(self) -> dict[str, dict[str, int]]:
        counts: dict[str, Counter] = defaultdict(Counter)
        for f in self.flips:
            counts[f["clock"]][f"{f['a']}->{f['b']}"] += 1
        return {clock: dict(sorted(c.items())) for clock, c in sorted(counts.items())}

    def to_dict(self) -> dict:
        return {
            "labels": {"a": self.labels[0], "b": self.labels[1]},
            "sides": self.sides,
            "verdicts": self.verdicts,
            "flip_counts": self.flip_counts(),
            "flips": self.flips,
            "verdict_only_on_one_side": self.appeared,
            "escalations": {
                **self.escalations,
                "added": self.escalations_added,
                "removed": self.escalations_removed,
                "retimed": self.escalations_retimed,
                "by_level": self.escalations_by_level,
            },
            "money": {"periods": self.money, "totals": self.money_totals},
            "penalty_changes": self.penalty_changes,
        }


def _esc_row(key: tuple, o: Output) -> dict:
    ticket, clock, cycle, policy, level, repeat = key
    return {"ticket": ticket, "clock": clock, "cycle": cycle, "policy": policy, "level": level, "repeat": repeat,
            "type": o.type.value, "time": o.time.isoformat(), "severity": o.data.get("severity"),
            "priority": o.data.get("priority")}


def compare(a_outputs: list[Output], b_outputs: list[Output], labels: tuple[str, str] = ("A", "B")) -> Backtest:
    """Compare two output lists of the same history (A = baseline, B = candidate)."""
    va, vb = clock_verdicts(a_outputs), clock_verdicts(b_outputs)
    flips, appeared = _verdict_changes(va, vb)
    ea, eb = escalation_keys(a_outputs), escalation_keys(b_outputs)
    added, removed, retimed = _escalation_changes(ea, eb)
    money, money_totals = _money_changes(money_by_period(a_outputs), money_by_period(b_outputs))
    pa, pb = penalties_by_ticket(a_outputs), penalties_by_ticket(b_outputs)
    penalty_changes = [{"ticket": t, "a": money_text(pa.get(t, ZERO)), "b": money_text(pb.get(t, ZERO)),
                        "delta": money_text(pb.get(t, ZERO) - pa.get(t, ZERO))}
                       for t in sorted(set(pa) | set(pb)) if pa.get(t, ZERO) != pb.get(t, ZERO)]
    return Backtest(labels, {"a": verdict_counts(va), "b": verdict_counts(vb)}, flips, appeared,
                    _escalation_totals(ea, eb), added, removed, retimed, _escalations_by_level(ea, eb),
                    money, money_totals, penalty_changes)


def _verdict_changes(va: dict, vb: dict) -> tuple[list[dict], list[dict]]:
    """(flips: met <-> breached, appeared: a verdict on one side only), by (ticket, clock)."""
    flips, appeared = [], []
    for key in sorted(set(va) | set(vb)):
        a, b = va.get(key), vb.get(key)
        row = {"ticket": key[0], "clock": key[1],
               "priority_a": a and a.priority, "priority_b": b and b.priority,
               "a": a.verdict if a else None, "b": b.verdict if b else None,
               "time_a": a and a.time, "time_b": b and b.time}
        if a and b:
            if a.verdict != b.verdict:
                flips.append(row)
        elif a or b:
            appeared.append(row)
    return flips, appeared


def _escalation_changes(ea: dict, eb: dict) -> tuple[list[dict], list[dict], list[dict]]:
    """(added on B, removed on B, fired on both at different instants)."""
    added = [_esc_row(k, eb[k]) for k in sorted(set(eb) - set(ea), key=_sort_key)]
    removed = [_esc_row(k, ea[k]) for k in sorted(set(ea) - set(eb), key=_sort_key)]
    retimed = [{**_esc_row(k, eb[k]), "time_a": ea[k].time.isoformat(), "time_b": eb[k].time.isoformat()}
               for k in sorted(set(ea) & set(eb), key=_sort_key) if ea[k].time != eb[k].time]
    return added, removed, retimed


def _escalations_by_level(ea: dict, eb: dict) -> list[dict]:
    levels: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for side, keys in ((0, ea), (2, eb)):
        for k, o in keys.items():
            levels[(k[3] or "", k[4] or 0)][side + (o.type is OutputType.ESCALATION_REPEATED)] += 1
    return [{"policy": p, "level": lv, "triggered_a": n[0], "repeated_a": n[1], "triggered_b": n[2],
             "repeated_b": n[3], "delta": (n[2] + n[3]) - (n[0] + n[1])}
            for (p, lv), n in sorted(levels.items())]


def _escalation_totals(ea: dict, eb: dict) -> dict[str, int]:
    out = {}
    for side, keys in (("a", ea), ("b", eb)):
        out[f"triggered_{side}"] = sum(o.type is OutputType.ESCALATION_TRIGGERED for o in keys.values())
        out[f"repeated_{side}"] = sum(o.type is OutputType.ESCALATION_REPEATED for o in keys.values())
    escalations = {k: out[k] for k in ("triggered_a", "repeated_a", "triggered_b", "repeated_b")}
    escalations["pages_a"] = escalations["triggered_a"] + escalations["repeated_a"]
    escalations["pages_b"] = escalations["triggered_b"] + escalations["repeated_b"]
    escalations["pages_delta"] = escalations["pages_b"] - escalations["pages_a"]
    return escalations


def _money_changes(ma: dict, mb: dict) -> tuple[list[dict], list[dict]]:
    """(rows per kind, period and currency; totals per kind and currency)."""
    empty = {"amount": ZERO, "count": 0, "capped": 0}
    money, totals = [], defaultdict(lambda: [ZERO, ZERO, 0, 0])
    for key in sorted(set(ma) | set(mb)):
        kind, period, currency = key
        ra, rb = ma.get(key, empty), mb.get(key, empty)
        money.append({"kind": kind, "period": period, "currency": currency,
                      "a": money_text(ra["amount"]), "b": money_text(rb["amount"]),
                      "delta": money_text(rb["amount"] - ra["amount"]),
                      "count_a": ra["count"], "count_b": rb["count"],
                      "capped_a": ra["capped"], "capped_b": rb["capped"]})
        t = totals[(kind, currency)]
        t[0] += ra["amount"]
        t[1] += rb["amount"]
        t[2] += ra["count"]
        t[3] += rb["count"]
    money_totals = [{"kind": k, "currency": c, "a": money_text(t[0]), "b": money_text(t[1]),
                     "delta": money_text(t[1] - t[0]), "count_a": t[2], "count_b": t[3]}
                    for (k, c), t in sorted(totals.items())]
    return money, money_totals


def _sort_key(key: tuple) -> tuple:
    return tuple("" if v is None else v for v in key)


def side_facts(run: SideRun, paths: Iterable[str], agreement_map: Mapping[str, str] | None = None) -> dict:
    s = run.stats
    return {"label": run.label, "paths": [str(p) for p in paths], "agreements": run.agreements(),
            "agreement_map": dict(agreement_map or {}), "events": s.events, "rejected": s.rejected,
            "duplicates": s.duplicates, "late": s.late, "outputs": dict(sorted(s.outputs.items()))}


def backtest(registry_a: Registry, registry_b: Registry, lines: list[bytes | str], until: datetime | None = None,
             agreement_map: Mapping[str, str] | None = None, labels: tuple[str, str] = ("A", "B"),
             progress: Callable[[Iterable], Iterable] | None = None) -> tuple[Backtest, SideRun, SideRun]:
    """Replay ``lines`` under both registries (B's events renamed by ``agreement_map``) and compare.

    ``progress`` may wrap each side's line iterator (for a progress bar); it must yield the lines.
    """
    wrap = progress or (lambda it: it)
    run_a = replay_side(labels[0], registry_a, wrap(lines), until)
    run_b = replay_side(labels[1], registry_b, wrap(lines), until, agreement_map)
    result = compare(run_a.outputs, run_b.outputs, labels)
    return result, run_a, run_b
