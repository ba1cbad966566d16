"""One ticket's step: the customer's incident plus its obligations and engagements (DESIGN.md §13).

The processor calls these (never ``incident.py`` directly); each takes the registry so the
supporting agreements of a ticket's engagements are found by (id, revision) like its own.

Invariants:
- a ticket with no obligations and no engagements is stepped by the plain ``incident``
  functions, unchanged: agreements without §13 keys give the outputs they always gave;
- at one event: the customer's side first, then its obligations (stop, start), then each
  engagement in order;
- deadlines fire in time order over the three; at one instant obligation misses first (a breach
  at the instant an obligation is missed is excused), then the customer's side, then the
  engagements in order.
"""

from __future__ import annotations

from datetime import datetime

from escalation.core.events import Rejected
from escalation.core.tickets import engagements, obligations
from escalation.core.tickets import incident as inc
from escalation.core.tickets.lifecycle import lifecycle_for


def for_opening(registry, event):
    """The customer agreement a ``ticket.opened`` is pinned to; a supporting agreement (OLA, UC)
    is never opened on directly: it runs beside a customer agreement."""
    compiled = registry.for_opening(event)
    if compiled.agreement.kind != "Agreement":
        raise Rejected(f"agreement {compiled.id!r} is an {compiled.agreement.kind}: it runs beside a customer "
                       "agreement's tickets; open the ticket under the customer's agreement")
    return compiled


def _plain(compiled, incident) -> bool:
    return not incident.engagements and not compiled.agreement.obligations


def open_incident(registry, compiled, event):
    incident, outputs, next_at = inc.open_incident(compiled, event)
    incident.engagements = engagements.attach(registry, compiled, event) or ()  # () is the shared default
    if _plain(compiled, incident):
        return incident, outputs, next_at
    t = event.time
    obligations.on_event(compiled, incident, event, t)
    outputs += engagements.step(registry, incident, event, t, [False] * len(incident.engagements))
    outputs += _advance(registry, compiled, incident, t, True)
    return incident, outputs, next_due(registry, compiled, incident)


def check_event(registry, compiled, incident, event) -> str:
    """The lifecycle state ``event`` leads to; Rejected if it does not fit. Reads only."""
    if incident.engagements and engagements.check(registry, incident, event):
        return lifecycle_for(compiled.source).fire(incident.lifecycle, incident.acknowledged, event.type, incident.ticket)
    return inc.check_event(compiled, incident, event)


def apply_event(registry, compiled, incident, event, lifecycle: str | None = None):
    """(outputs, the next instant something is due). ``lifecycle``: what ``check_event`` said of
    this event on the ticket as it is, when the caller has asked already (a plain ticket is then
    not checked twice)."""
    if _plain(compiled, incident):
        return inc.apply_event(compiled, incident, event, lifecycle)
    check_event(registry, compiled, incident, event)
    before = engagements.scopes_before(registry, incident)
    if incident.engagements and engagements.check(registry, incident, event):
        incident.last_time = max(event.time, incident.last_time)
        outputs = []
    else:
        outputs = inc.apply_only(compiled, incident, event)
    t = incident.last_time
    if event.type == "ticket.status_changed":
        incident.vendor = event.vendor
    obligations.on_event(compiled, incident, event, t)
    outputs += engagements.step(registry, incident, event, t, before)
    outputs += _advance(registry, compiled, incident, t, True)
    return outputs, next_due(registry, compiled, incident)


def next_due(registry, compiled, incident) -> datetime | None:
    if _plain(compiled, incident):
        return inc.next_due(compiled, incident)
    return min((d for _, d in _members_due(registry, compiled, incident) if d is not None), default=None)


def _members_due(registry, compiled, incident):
    """(member, next instant) of the obligations, the customer's side and each engagement."""
    if incident.lifecycle != "closed":
        yield "obligations", obligations.next_due(incident)
    yield (compiled, incident), inc.next_due(compiled, incident)
    for sub in incident.engagements:
        sub_compiled = registry.get(sub.agreement, sub.revision)
        yield (sub_compiled, sub), inc.next_due(sub_compiled, sub)


def advance_and_next(registry, compiled, incident, until: datetime, inclusive: bool):
    if _plain(compiled, incident):
        return inc.advance_and_next(compiled, incident, until, inclusive)
    outputs = _advance(registry, compiled, incident, until, inclusive)
    return outputs, next_due(registry, compiled, incident)


def _advance(registry, compiled, incident, until: datetime, inclusive: bool) -> list:
    """Fire the earliest instant's items over every member until ``until``, in member order."""
    outputs: list = []
    while True:
        dues = [(m, d) for m, d in _members_due(registry, compiled, incident) if d is not None]
        at = min((d for _, d in dues), default=None)
        if at is None or at > until or (at == until and not inclusive):
            return outputs
        for member, due in dues:
            if due != at:
                continue
            if member == "obligations":
                outputs += obligations.fire(compiled, incident, at, inclusive=True)
            else:
                outputs += inc.advance(*member, at, inclusive=True)
