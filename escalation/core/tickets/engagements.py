"""Supporting agreements beside the customer's (DESIGN.md §13 "Parties and their responsibilities").

An ``OperationalLevelAgreement`` (an internal team) or ``UnderpinningContract`` (a vendor) has a
``scope``; for one ticket it is an *engagement*: a sub-incident (an ``Incident`` under that
agreement, pinned at the ticket's opening to its highest revision valid that day) kept inside the
ticket's incident (``Incident.engagements``), so the live engine stores everything of one ticket
in one table value and replay and live see the same record.

The scope plays the ticket's life for the supporting agreement (README "Parties"):
- the ticket is *in scope* while it is open (not resolved, not closed) and assigned to the scope's
  ``group``, or its status is the scope's ``status`` (and, with ``vendor``, the ``vendor`` of the
  ``ticket.status_changed`` that set it is that vendor);
- entering the scope the first time opens the engagement (its clocks that start on ``opened``
  start then); leaving it is the engagement's ``resolved`` (clocks that stop on acknowledged or
  resolved stop: ``sla.met`` when in time); entering again is its ``reopened`` (the supporting
  agreement's ``on_reopen``: ``resume`` continues the elapsed time, ``new_cycle`` starts cycle 2);
- while in scope, ``ticket.acknowledged`` (and, for a group, a ``ticket.assigned`` naming a new
  assignee in the same group: someone of the group took it) is the engagement's acknowledgement;
  public updates, status changes (its own ``pause_when``) and priority changes apply as usual;
- ``ticket.closed``/``cancelled`` close it; a ``notification.acknowledged`` whose ``dedup_key``
  is ``<supporting agreement>/<ticket>/<clock>`` goes to that engagement only.

Invariants: the customer's side is computed exactly as without engagements (an incident with none
takes the plain ``incident`` functions), engagements apply an event after it, in the order they
were attached; deadlines of the customer's side and of every engagement fire in time order,
the customer's first at one instant.
"""

from __future__ import annotations

from escalation.core.events import Rejected
from escalation.core.tickets import clocks as ck
from escalation.core.tickets.incident import _HANDLERS, _pauses, _stop
from escalation.core.tickets.state import Incident

#: event types an engagement in scope applies with the ordinary handlers
_FORWARD = ("ticket.updated", "ticket.status_changed")


def attach(registry, compiled, event) -> list[Incident]:
    """The engagements of a ticket opening under ``compiled``: one per supporting agreement whose
    ``supports`` (empty: any) names the customer agreement, whose ``services`` (empty: any) holds
    the ticket's service and whose priorities hold its priority, at its highest revision valid on
    the opening day."""
    best: dict[str, object] = {}
    for other in registry:
        a = other.agreement
        if a.kind == "Agreement" or (a.supports and compiled.id not in a.supports):
            continue
        if (a.services and event.service not in a.services) or event.priority not in a.priorities:
            continue
        if not registry.valid_on(other, event.time.astimezone(other.tz).date()):
            continue
        if a.id not in best or other.revision > best[a.id].revision:
            best[a.id] = other
    return [Incident(event.ticket, c.id, c.revision, event.priority, event.service, event.time, event.time,
                     assignee=event.assignee, group=event.group, customer=event.customer)
            for _, c in sorted(best.items())]


def in_scope(scope, incident: Incident) -> bool:
    """Whether the ticket (the customer-side ``incident``) is in ``scope`` now."""
    if incident.lifecycle in ("resolved", "closed"):
        return False
    if scope.group is not None:
        return incident.group == scope.group
    return incident.status == scope.status and (scope.vendor is None or incident.vendor == scope.vendor)


def owner(incident: Incident, dedup_key: str) -> Incident | None:
    """The engagement whose clocks ``dedup_key`` names, else None (the customer's side)."""
    for sub in incident.engagements:
        if dedup_key.startswith(f"{sub.agreement}/{incident.ticket}/"):
            return sub
    return None


def scopes_before(registry, incident: Incident) -> list[bool]:
    """In-scope flags of every engagement before an event changes the ticket (``step`` needs them)."""
    return [in_scope(registry.get(s.agreement, s.revision).agreement.scope, incident) for s in incident.engagements]


def step(registry, incident: Incident, event, t, before: list[bool]) -> list:
    """Apply ``event`` (already applied to the customer's side) to every engagement; outputs.
    What falls due at ``t`` is left to the caller (``ticket._advance``), in member order."""
    outputs: list = []
    for sub, was in zip(incident.engagements, before):
        if sub.lifecycle == "closed":
            continue
        compiled = registry.get(sub.agreement, sub.revision)
        outputs += _one(compiled, incident, sub, event, t, was)
    return outputs


def _one(compiled, incident: Incident, sub: Incident, event, t, was: bool) -> list:
    sub.last_time = max(sub.last_time, t)
    if event.type in ("ticket.closed", "ticket.cancelled"):
        outputs = _HANDLERS[event.type](compiled, sub, event, t) if sub.clocks else []
        sub.lifecycle = "closed"
        return outputs
    now = in_scope(compiled.agreement.scope, incident)
    outputs = _record(compiled, incident, sub, event, t, was and now)
    if now and not was:
        outputs += _enter(compiled, incident, sub, t, event)
    elif was and not now:
        outputs += _leave(compiled, incident, sub, t, event.type)
    return outputs


def _record(compiled, incident: Incident, sub: Incident, event, t, staying: bool) -> list:
    """What an event does to an engagement besides moving it in or out of scope."""
    kind = event.type
    if kind == "ticket.priority_changed":
        return _HANDLERS[kind](compiled, sub, event, t)
    if kind == "ticket.assigned":
        took = staying and compiled.agreement.scope.group is not None and event.assignee not in (None, sub.assignee)
        sub.assignee, sub.group = incident.assignee, incident.group
        return _HANDLERS["ticket.acknowledged"](compiled, sub, event, t) if took else []
    if kind == "ticket.status_changed":
        sub.vendor = incident.vendor
    if kind == "notification.acknowledged":
        return _HANDLERS[kind](compiled, sub, event, t) if owner(incident, event.dedup_key) is sub else []
    if staying and (kind in _FORWARD or kind == "ticket.acknowledged"):
        return _HANDLERS[kind](compiled, sub, event, t)
    if kind == "ticket.status_changed":
        sub.status = incident.status
    return []


def _enter(compiled, incident: Incident, sub: Incident, t, event) -> list:
    """Into scope (moved by ``event``): the engagement opens (first time) or reopens (its ``on_reopen``)."""
    sub.status, sub.vendor = incident.status, incident.vendor
    if not sub.clocks:
        sub.opened_at = t
        for name, spec in compiled.agreement.clocks.items():
            if spec.starts == "opened":
                sub.clocks[name] = ck.start(t, paused=_pauses(compiled, name, sub.status))
        sub.lifecycle = "open"
        return []
    outputs = _HANDLERS["ticket.reopened"](compiled, sub, event, t)
    sub.lifecycle = "acknowledged" if sub.acknowledged else "open"
    return outputs


def _leave(compiled, incident: Incident, sub: Incident, t, cause: str) -> list:
    """Out of scope (reassigned away, no longer waiting on the vendor, resolved): the engagement's
    ``resolved``: clocks stopping on acknowledged or resolved stop, met when in time."""
    why = f"{cause} (left scope {_describe(compiled.agreement.scope)})"
    outputs = [o for name, spec in compiled.agreement.clocks.items() if spec.stops in ("resolved", "acknowledged")
               and name in sub.clocks for o in _stop(compiled, sub, name, t, why)]
    sub.lifecycle = "resolved"
    return outputs


def _describe(scope) -> str:
    if scope.group is not None:
        return f"group {scope.group}"
    return f"status {scope.status}" + (f", vendor {scope.vendor}" if scope.vendor else "")


def check(registry, incident: Incident, event) -> bool:
    """Whether ``event`` is a ``notification.acknowledged`` for an engagement (then checked
    against it: Rejected for an unknown clock) rather than for the customer's side."""
    if event.type != "notification.acknowledged":
        return False
    sub = owner(incident, event.dedup_key)
    if sub is None:
        return False
    if event.dedup_key not in {f"{sub.agreement}/{sub.ticket}/{name}" for name in sub.clocks}:
        known = ", ".join(f"{sub.agreement}/{sub.ticket}/{name}" for name in sub.clocks) or "none started yet"
        raise Rejected(f"unknown dedup_key {event.dedup_key!r} for ticket {incident.ticket!r} (known: {known})")
    return True
