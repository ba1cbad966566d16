"""Customer obligations (DESIGN.md §13): clocks of the customer's that excuse the provider.

``obligations: [{id, party: customer, starts, stops, within, calendar}]``. Per ticket and
obligation, ``Incident.obligations[id]`` holds the running cycle: ``cycle``, ``start``, ``due``
(``within`` of counted time in ``calendar`` after the start, computed once at the start: an
obligation does not pause), ``missed_at`` and ``stopped_at`` (ISO instants or None).

Rules (README "Customer obligations"):
- the obligation's ``starts`` event (``opened``, ``acknowledged``, a public ``updated``,
  ``resolved``, ``reopened``) starts a cycle unless one is running; its ``stops`` event
  (``closed`` also covers ``ticket.cancelled``) ends the running cycle; a ticket that closes ends
  every cycle. At one event a stop applies before a start.
- a cycle still running at ``due`` is missed: ``obligation.missed`` (timeline, no money) at
  ``due``; the cycle then runs on until its stop event.
- a breach of the customer agreement's clocks at an instant ``b`` with an obligation missed at
  ``b`` (``missed_at <= b`` and not stopped at or before ``b``) is excused: ``sla.breached``
  carries ``excused: true`` and no penalty is due. At one instant a miss fires before a breach.
"""

from __future__ import annotations

from datetime import datetime

from escalation.agreement.durations import BusinessDays, iso_duration, parse_duration
from escalation.core.outputs import Output, OutputType, output, utc
from escalation.core.tickets.state import EMPTY

_WORD = {"ticket.opened": "opened", "ticket.acknowledged": "acknowledged", "ticket.updated": "updated",
         "ticket.resolved": "resolved", "ticket.reopened": "reopened", "ticket.closed": "closed",
         "ticket.cancelled": "closed"}


def on_event(compiled, incident, event, t: datetime) -> None:
    """Stop, then start, the obligations ``event`` names (changes state; no outputs)."""
    word = _WORD.get(event.type)
    if word is None or (word == "updated" and not event.public):
        return
    for o in compiled.agreement.obligations:
        cur = incident.obligations.get(o.id)
        running = cur is not None and cur["stopped_at"] is None
        if running and (o.stops == word or word == "closed"):
            cur["stopped_at"] = t.isoformat()
            running = False
        if not running and o.starts == word:
            cal = compiled.calendars[o.calendar]
            within = parse_duration(o.within)
            amount = within.resolve(cal.business_day) if isinstance(within, BusinessDays) else within
            if incident.obligations is EMPTY:  # the shared empty value: this incident's own dict now
                incident.obligations = {}
            incident.obligations[o.id] = {"cycle": 1 if cur is None else cur["cycle"] + 1, "start": t.isoformat(),
                                          "due": cal.add(t, amount).isoformat(), "missed_at": None, "stopped_at": None}


def next_due(incident) -> datetime | None:
    """The earliest miss still to fire."""
    dues = [datetime.fromisoformat(c["due"]) for c in incident.obligations.values()
            if c["stopped_at"] is None and c["missed_at"] is None]
    return min(dues, default=None)


def fire(compiled, incident, until: datetime, inclusive: bool) -> list:
    """``obligation.missed`` for every running cycle due before ``until`` (at it when inclusive)."""
    outputs = []
    for i, o in enumerate(compiled.agreement.obligations):
        cur = incident.obligations.get(o.id)
        if cur is None or cur["stopped_at"] is not None or cur["missed_at"] is not None:
            continue
        due = datetime.fromisoformat(cur["due"])
        if due < until or (inclusive and due == until):
            cur["missed_at"] = cur["due"]
            outputs.append(_missed(compiled, incident, i, o, cur, due))
    return outputs


def excuse(compiled, incident, breach: Output, at: datetime) -> bool:
    """Mark ``breach`` (``sla.breached`` at ``at``) ``excused: true`` if an obligation is missed
    at ``at``; whether it was."""
    oid = excused_by(incident, at)
    if oid is None:
        return False
    cur = incident.obligations[oid]
    index = next(i for i, o in enumerate(compiled.agreement.obligations) if o.id == oid)
    breach.data["excused"] = True
    breach.data["explain"]["excused"] = {
        "obligation": oid, "clause": f"obligations[{index}]", "missed_at": utc(datetime.fromisoformat(cur["missed_at"])),
        "reason": f"the customer's obligation {oid} was missed at this breach: no penalty is owed"}
    return True


def excused_by(incident, at: datetime) -> str | None:
    """The id of an obligation missed at ``at`` (a breach then is excused), else None."""
    for oid, cur in incident.obligations.items():
        if cur["missed_at"] is None or datetime.fromisoformat(cur["missed_at"]) > at:
            continue
        if cur["stopped_at"] is None or datetime.fromisoformat(cur["stopped_at"]) > at:
            return oid
    return None


def _missed(compiled, incident, index: int, o, cur: dict, due: datetime) -> Output:
    start = datetime.fromisoformat(cur["start"])
    data = {
        "ticket": incident.ticket, "agreement": compiled.id, "revision": compiled.revision,
        "service": incident.service, "priority": incident.priority, "obligation": o.id, "party": o.party,
        "cycle": cur["cycle"], "within": o.within, "calendar": o.calendar, "started": utc(start), "due": utc(due),
        "severity": "info",
        "summary": f"{incident.ticket}: the {o.party} missed {o.id} ({o.stops} within {o.within} of {o.starts})",
        "explain": {"reason": f"{o.party} obligation {o.id}: not {o.stops} within {o.within} ({o.calendar}) "
                              f"after {o.starts} at {utc(start)}",
                    "clause": f"obligations[{index}]", "wall_clock": iso_duration(due - start),
                    "consequence": "breaches of the provider's clocks while it stays missed are excused"},
    }
    return output(compiled.source, OutputType.OBLIGATION_MISSED, incident.ticket, due, ("obligation", o.id, cur["cycle"]), data)
