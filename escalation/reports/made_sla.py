"""How often the engine's resolution verdict agrees with ServiceNow's own ``made_sla``.

The ServiceNow importer (``escalation.importers.servicenow``) copies ServiceNow's verdict, the
``made_sla`` of the incident's *last* snapshot, into ``ticket.opened`` ``attributes.made_sla``
(and ``ticket.closed`` ``attributes.made_sla``; ``made_sla_false_at`` is the first snapshot that
recorded ``false``). The engine's verdict is the resolution clock's: ``breached`` when any cycle
breached, else ``met``. Pure functions over the events and outputs of one replay.

Every disagreement gets one reason, the first rule that fits (the rule texts are in ``REASONS``):

engine met, ServiceNow missed
  1. ``reopened`` - the ticket was reopened: the agreement resumes the clock and does not count
     the time between resolution and reopen; ServiceNow's verdict covers the whole span.
  2. ``pauses`` - counted in the agreement's calendar *with* the paused spans (Awaiting ...), the
     clock would have breached: ServiceNow did not stop its clock while waiting.
  3. ``calendar`` - counted around the clock the ticket took longer than the target: the
     agreement counts business hours only, ServiceNow's clock ran 24x7.
  4. ``priority_target`` - none of the above, and ServiceNow marks at least 90 % of this
     priority's tickets missed however fast they were resolved: its target for the priority is
     much stricter (or its SLA is not a resolution SLA).
  5. ``priority_changed`` - the priority changed while open: the agreement measures the kept
     elapsed time against the target of the priority in force (a breach under an earlier,
     stricter priority stays), ServiceNow's verdict follows another priority.
  6. ``unexplained``.

engine breached, ServiceNow made it
  1. ``reopened`` - reopened, and the first resolution was inside the target.
  2. ``priority_changed`` - see above (typically a breach under an earlier, stricter priority).
  3. ``longer_target`` - ServiceNow accepted a resolution that took longer than the agreement's
     target (its target for the priority is longer).
  4. ``unexplained``.

Besides the reasons, :func:`wall_clock_fit` finds, per priority, the single wall-clock
resolution time (opened -> last resolution, 24x7, pauses included) that best separates made from
missed tickets: if ServiceNow simply counted wall-clock time against one limit, that limit
explains ``made_sla`` with the given accuracy.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime

from escalation.backtest import clock_verdicts
from escalation.core.outputs import Output

REASONS = {
    "reopened": "reopened: the agreement resumes the clock and skips the time between resolution and "
                "reopen; ServiceNow's verdict covers the whole span",
    "priority_changed": "priority changed while open: the engine measures against the target of the priority "
                        "in force (a breach under an earlier, stricter priority stays); ServiceNow's verdict "
                        "follows another priority",
    "pauses": "pauses: the agreement stops the clock while Awaiting user/vendor; counted with those spans "
              "the clock would have breached",
    "calendar": "calendar: the agreement counts business hours only; counted 24x7 the ticket took longer "
                "than the target",
    "priority_target": "per-priority target: ServiceNow marks (nearly) every ticket of this priority missed, "
                       "however fast it was resolved",
    "longer_target": "longer target in ServiceNow: it accepted a resolution slower than the agreement's "
                     "target for the priority",
    "unexplained": "unexplained by the recorded times",
}
RESOLUTION = "resolution"


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s)


def ticket_facts(events: Iterable[dict]) -> dict[str, dict]:
    """Per ticket: made_sla, agreement, first/final priority, opened, resolutions, reopens, pauses."""
    facts: dict[str, dict] = {}
    for e in events:
        if not isinstance(e, dict) or "ticket" not in e or "type" not in e:
            continue
        t = e["type"]
        if t == "ticket.opened":
            if e["ticket"] in facts:
                continue
            attrs = e.get("attributes") or {}
            facts[e["ticket"]] = {
                "ticket": e["ticket"], "agreement": e.get("agreement"), "priority": e.get("priority"),
                "first_priority": e.get("priority"), "opened": e["time"],
                "made_sla": attrs.get("made_sla") if isinstance(attrs.get("made_sla"), bool) else None,
                "resolutions": [], "reopens": 0, "priority_changes": 0, "status_changes": 0, "closed": None,
            }
            continue
        f = facts.get(e["ticket"])
        if f is None:
            continue
        if t == "ticket.resolved":
            f["resolutions"].append(e["time"])
        elif t == "ticket.reopened":
            f["reopens"] += 1
        elif t == "ticket.priority_changed":
            f["priority_changes"] += 1
            f["priority"] = e.get("priority", f["priority"])
        elif t == "ticket.status_changed":
            f["status_changes"] += 1
        elif t in ("ticket.closed", "ticket.cancelled"):
            f["closed"] = e["time"]
            made = (e.get("attributes") or {}).get("made_sla")
            if isinstance(made, bool):
                f["made_sla"] = made
    return facts


def wall_clock_fit(rows: list[dict]) -> dict:
    """Best single wall-clock limit (hours) separating made_sla true/false, for ``rows``.

    ``rows``: dicts with ``wall_hours`` and ``made_sla``. Returns the limit (midpoint between the
    tickets on either side of the best cut, ``cut_between_hours``), its accuracy, and n.
    """
    pts = sorted((r["wall_hours"], r["made_sla"]) for r in rows if r["wall_hours"] is not None)
    n = len(pts)
    if not n:
        return {"n": 0, "limit_hours": None, "accuracy": None, "made": 0, "missed": 0}
    missed_total = sum(1 for _, m in pts if not m)
    best_acc, best_i = -1.0, 0
    made_below = missed_below = 0
    for i in range(n + 1):  # cut after i points: first i predicted "made"
        if i:
            if pts[i - 1][1]:
                made_below += 1
            else:
                missed_below += 1
        if i < n and i and pts[i][0] == pts[i - 1][0]:
            continue  # cannot cut between equal times
        correct = made_below + (missed_total - missed_below)
        if correct / n > best_acc:
            best_acc, best_i = correct / n, i
    if best_i == 0:
        limit = None  # every ticket predicted missed
    elif best_i == n:
        limit = pts[-1][0]
    else:
        limit = (pts[best_i - 1][0] + pts[best_i][0]) / 2
    return {"n": n, "limit_hours": limit, "accuracy": best_acc,
            "made": n - missed_total, "missed": missed_total,
            "cut_between_hours": [pts[best_i - 1][0] if best_i else None, pts[best_i][0] if best_i < n else None],
            "slowest_made_hours": max((w for w, m in pts if m), default=None),
            "fastest_missed_hours": min((w for w, m in pts if not m), default=None)}


def compare_made_sla(events: Iterable[dict], outputs: Iterable[Output], registry=None, *,
                     examples: int = 5) -> dict:
    """Agreement of the engine's resolution verdict with ServiceNow's made_sla (JSON-ready).

    ``registry`` (the replay's) gives each ticket's resolution target and calendar, which the
    ``pauses``/``calendar``/``longer_target`` reasons need; without it those reasons cannot be
    told apart and fall to ``unexplained``.
    """
    facts = ticket_facts(events)
    verdicts = {ticket: v for (ticket, clock), v in clock_verdicts(outputs).items() if clock == RESOLUTION}
    rows, confusion, missed_rate = _rows(facts, verdicts)
    by_priority, reasons = _disagreements(rows, registry, missed_rate, examples)
    compared = sum(c["made"] + c["missed"] for k, c in confusion.items() if k != "none")
    agreeing = confusion["met"]["made"] + confusion["breached"]["missed"]
    return {
        "tickets": len(facts),
        "compared": compared,
        "agreeing": agreeing,
        "agreement_rate": agreeing / compared if compared else None,
        "confusion": {engine: {sn: confusion[engine][sn] for sn in ("made", "missed", "unknown")}
                      for engine in ("met", "breached", "none")},
        "by_priority": {p: {"agree": c["agree"], "disagree": c["disagree"],
                            "rate": c["agree"] / (c["agree"] + c["disagree"]) if c["agree"] + c["disagree"] else None,
                            "servicenow_missed_share": (missed_rate[p][0] / missed_rate[p][1]) if missed_rate[p][1] else None}
                        for p, c in sorted(by_priority.items(), key=lambda kv: (kv[0] is None, kv[0]))},
        "reasons": reasons,
        "wall_clock_fit": _fits(rows),
        "targets": _targets(registry),
    }


def _rows(facts: dict[str, dict], verdicts: dict) -> tuple[list[dict], dict[str, Counter], dict[str, list[int]]]:
    """(one row per ticket, the confusion matrix engine x made_sla, per priority [missed, known])."""
    confusion: dict[str, Counter] = {"met": Counter(), "breached": Counter(), "none": Counter()}
    rows = []
    missed_rate: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for ticket, f in facts.items():
        v = verdicts.get(ticket)
        engine = v.verdict if v else "none"
        sn = "unknown" if f["made_sla"] is None else ("made" if f["made_sla"] else "missed")
        confusion[engine][sn] += 1
        last = f["resolutions"][-1] if f["resolutions"] else None
        wall = (_t(last) - _t(f["opened"])).total_seconds() / 3600 if last else None
        rows.append({"ticket": ticket, "priority": f["priority"], "first_priority": f["first_priority"],
                     "engine": engine, "made_sla": f["made_sla"], "wall_hours": wall,
                     "revision": v.revision if v else None, "agreement": f["agreement"], "facts": f})
        if f["made_sla"] is not None:
            missed_rate[f["priority"]][0] += not f["made_sla"]
            missed_rate[f["priority"]][1] += 1
    return rows, confusion, missed_rate


def _disagreements(rows: list[dict], registry, missed_rate, examples: int) -> tuple[dict[str, Counter], dict]:
    """(agree/disagree per priority, the reasons of each disagreement direction with examples)."""
    reasons: dict[str, Counter] = {"met_missed": Counter(), "breached_made": Counter()}
    reason_examples: dict[str, dict[str, list]] = {"met_missed": defaultdict(list), "breached_made": defaultdict(list)}
    by_priority: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        if row["engine"] == "none" or row["made_sla"] is None:
            continue
        agree = (row["engine"] == "met") == row["made_sla"]
        by_priority[row["priority"]]["agree" if agree else "disagree"] += 1
        if agree:
            continue
        kind = "met_missed" if row["engine"] == "met" else "breached_made"
        reason, detail = _reason(kind, row, registry, missed_rate)
        reasons[kind][reason] += 1
        if len(reason_examples[kind][reason]) < examples:
            reason_examples[kind][reason].append({"ticket": row["ticket"], "priority": row["priority"], **detail})
    return by_priority, {kind: [{"reason": r, "count": n, "text": REASONS[r], "examples": reason_examples[kind][r]}
                                for r, n in c.most_common()] for kind, c in reasons.items()}


def _fits(rows: list[dict]) -> dict:
    """The wall-clock fit per priority and over all tickets."""
    fit_rows = [r for r in rows if r["made_sla"] is not None and r["wall_hours"] is not None]
    fits = {p: wall_clock_fit([r for r in fit_rows if r["priority"] == p])
            for p in sorted({r["priority"] for r in fit_rows}, key=lambda p: (p is None, p))}
    fits["all"] = wall_clock_fit(fit_rows)
    return fits


def _targets(registry) -> list[dict]:
    if registry is None:
        return []
    out = []
    for compiled in registry:
        for (clock, priority), rule in sorted(compiled.targets.items()):
            if clock == RESOLUTION:
                out.append({"agreement": compiled.id, "revision": compiled.revision, "priority": priority,
                            "within": rule.within_text, "calendar": rule.calendar_name,
                            "counted_hours": rule.within.total_seconds() / 3600})
    return out


def _rule(registry, row):
    if registry is None or not row["agreement"]:
        return None
    try:
        compiled = (registry.get(row["agreement"], row["revision"]) if row["revision"] is not None
                    else registry.latest(row["agreement"]))
    except Exception:  # noqa: BLE001 - agreement not loaded: no target to reason with
        return None
    return compiled.target(RESOLUTION, row["priority"])


def _reason(kind: str, row: dict, registry, missed_rate) -> tuple[str, dict]:
    f = row["facts"]
    detail: dict = {"wall_hours": None if row["wall_hours"] is None else round(row["wall_hours"], 2)}
    rule = _rule(registry, row)
    if rule is not None:
        detail["target"] = rule.within_text
    if f["reopens"]:
        if kind == "met_missed":
            return "reopened", detail
        first = f["resolutions"][0] if f["resolutions"] else None
        if rule is None or first is None or \
                rule.calendar.counted(_t(f["opened"]), _t(first)) <= rule.within:
            return "reopened", detail
    if f["priority_changes"]:
        detail["first_priority"] = f["first_priority"]
    if f["priority_changes"] and kind == "breached_made":
        return "priority_changed", detail
    last = f["resolutions"][-1] if f["resolutions"] else None
    if kind == "met_missed":
        if rule is not None and last is not None:
            opened, resolved = _t(f["opened"]), _t(last)
            with_pauses = rule.calendar.counted(opened, resolved)
            detail["counted_with_pauses_hours"] = round(with_pauses.total_seconds() / 3600, 2)
            if with_pauses > rule.within:
                return "pauses", detail
            if resolved - opened > rule.within:
                return "calendar", detail
        missed, n = missed_rate.get(row["priority"], (0, 0))
        if n and missed / n >= 0.9:
            return "priority_target", detail
        if f["priority_changes"]:
            return "priority_changed", detail
        return "unexplained", detail
    if rule is not None and last is not None and _t(last) - _t(f["opened"]) > rule.within:
        return "longer_target", detail
    return "unexplained", detail
