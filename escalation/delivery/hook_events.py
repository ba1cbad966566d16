"""A ticket tool's webhook body -> §3 ticket events, by its mapping (pure; DESIGN.md §3, §14).

Invariants:
- deterministic ids: ``<tool>:<ticket>:<change>:<what>``, where ``change`` is the tool's id of
  the change (Jira ``changelog.id``, ServiceNow ``sys_mod_count``) or else ``<kind>@<UTC time>``
  (the mapped kind, e.g. ``status``, keeps apart two Zendesk triggers fired by one update) and ``what`` the event
  type without ``ticket.``; a comment's event is keyed by the comment's id when the body has one,
  so Jira's ``comment_created`` and the ``issue_updated`` of the same comment give one id. The same
  body always gives the same events with the same ids: a webhook retried by the tool is ignored
  by the engine (a repeated id), never applied twice;
- all or nothing: every event passes :func:`~escalation.core.events.decode_event` (the engine's
  own check) or the webhook is refused (422, the reason; nothing produced);
- an unmappable body (unknown kind, missing ticket or time, a status or priority the mapping does
  not list) is refused with a reason naming the field and value; a well-formed webhook that
  carries no change the engine follows is :class:`~escalation.delivery.ack.Ignored` (200).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from escalation.core.events import Rejected, decode_event
from escalation.delivery.ack import AckRefused, Ignored
from escalation.delivery.hook_mapping import HookMapping, StatusRule
from escalation.delivery.hook_payload import instant, pick, text

#: one event before its id: (type without "ticket.", extra fields, change key override or None)
Draft = tuple[str, dict, "str | None"]


@dataclass(frozen=True)
class Change:
    what: str                  # status | priority | assignee
    before: str | None
    after: str | None


@dataclass(frozen=True)
class Webhook:
    """One body read through its mapping: what the builders need, nothing else."""

    mapping: HookMapping
    body: dict
    kind_name: str
    ticket: str
    time: datetime

    def value(self, path: str | None) -> str | None:
        return text(pick(self.body, path))

    def source(self, name: str) -> str | None:
        spec = getattr(self.mapping, name)
        if spec is None:
            return None
        return spec.constant if spec.constant is not None else (self.value(spec.field) or spec.default)


def _rule(hook: Webhook, status: str | None) -> StatusRule:
    rule = hook.mapping.statuses.get(status) if status is not None else None
    if rule is None:
        raise AckRefused(422, f"status {status!r} (field {hook.mapping.status}) is not in the mapping's statuses")
    return rule


def _priority(hook: Webhook, value: str | None) -> str:
    mapped = hook.mapping.priorities.get(value) if value is not None else None
    if mapped is None:
        raise AckRefused(422, f"priority {value!r} (field {hook.mapping.priority}) is not in the mapping's priorities")
    return mapped


def status_drafts(hook: Webhook, before: str | None, after: str | None, skip_status: str | None = None) -> list[Draft]:
    """The events of reaching ``after`` (from ``before`` when known); see :class:`StatusRule`."""
    rule = _rule(hook, after)
    prior = hook.mapping.statuses.get(before) if before is not None else None
    out: list[Draft] = []
    if prior is not None and prior.event == "resolved" and rule.event is None:
        out.append(("reopened", {}, None))
    if rule.acknowledge:
        out.append(("acknowledged", {}, None))
    if rule.status is not None and rule.status != skip_status:
        out.append(("status_changed", {"status": rule.status}, None))
    if rule.event is not None:
        out.append((rule.event, {}, None))
    return out


def _assigned(hook: Webhook, assignee: str | None) -> Draft:
    return ("assigned", {"assignee": assignee, "group": hook.value(hook.mapping.group)}, None)


def _comment(hook: Webhook) -> list[Draft]:
    public = pick(hook.body, hook.mapping.public)
    # an explicit `false` marks an internal note; anything else (missing included) is public
    return [("updated", {"public": public is not False}, _comment_key(hook))]


def _comment_key(hook: Webhook) -> str | None:
    key = text(pick(hook.body, hook.mapping.comment))
    return f"comment-{key}" if key is not None else None


def _opened(hook: Webhook) -> list[Draft]:
    m = hook.mapping
    fields = {"priority": _priority(hook, hook.value(m.priority)), "service": hook.source("service"),
              "agreement": hook.source("agreement"), "customer": hook.source("customer"),
              "summary": hook.value(m.summary), "assignee": hook.value(m.assignee), "group": hook.value(m.group),
              "attributes": {"source": m.tool}}
    drafts: list[Draft] = [("opened", fields, None)]
    status = hook.value(m.status)
    # a ticket created in another status than the engine assumes gets that status (and its events)
    return drafts + (status_drafts(hook, None, status, skip_status=m.initial_status) if status is not None else [])


def changes(hook: Webhook) -> list[Change]:
    """What an ``updated`` webhook changed: its change log, else previous values sent beside the current ones."""
    m = hook.mapping
    if m.changelog is not None:
        items = pick(hook.body, m.changelog.items)
        names = {name: what for what, name in m.changelog.names.items()}
        return [Change(names[field], text(pick(item, m.changelog.before)), text(pick(item, m.changelog.after)))
                for item in (items if isinstance(items, list) else [])
                if isinstance(item, dict) and (field := text(pick(item, m.changelog.field))) in names]
    current = {"status": m.status, "priority": m.priority, "assignee": m.assignee}
    out = []
    for what, path in m.previous.items():
        before_raw = pick(hook.body, path)
        before, after = text(before_raw), hook.value(current[what])
        # a previous value that was not sent (missing) says nothing; one sent empty is "none before"
        if before_raw is not None and before != after:
            out.append(Change(what, before, after))
    return out


def _updated(hook: Webhook) -> list[Draft]:
    drafts: list[Draft] = []
    for change in changes(hook):
        if change.what == "status":
            drafts += status_drafts(hook, change.before, change.after)
        elif change.what == "priority":
            drafts.append(("priority_changed", {"priority": _priority(hook, change.after)}, None))
        else:
            drafts.append(_assigned(hook, change.after))
    if pick(hook.body, hook.mapping.comment) not in (None, False, "", "false"):
        drafts += _comment(hook)
    return drafts


_BUILDERS = {
    "created": _opened,
    "updated": _updated,
    "status": lambda h: status_drafts(h, None, h.value(h.mapping.status)),
    "priority": lambda h: [("priority_changed", {"priority": _priority(h, h.value(h.mapping.priority))}, None)],
    "assignee": lambda h: [_assigned(h, h.value(h.mapping.assignee))],
    "reopened": lambda h: [("reopened", {}, None)] + status_drafts(h, None, h.value(h.mapping.status)),
    "comment": _comment,
}


def read_webhook(body, mapping: HookMapping) -> tuple[Webhook, str]:
    """The body's kind, ticket and time; refused (422) when any is missing or unknown, Ignored for ``ignore``."""
    if not isinstance(body, dict):
        raise AckRefused(422, "the body is not a JSON object")
    kind_name = text(pick(body, mapping.event))
    kind = mapping.events.get(kind_name) if kind_name is not None else None
    if kind is None:
        raise AckRefused(422, f"{mapping.event} {kind_name!r} is not in the mapping's events")
    if kind == "ignore":
        raise Ignored(f"{mapping.event} {kind_name!r} is ignored by the mapping")
    ticket = text(pick(body, mapping.ticket))
    if ticket is None:
        raise AckRefused(422, f"{mapping.ticket}: missing: no ticket")
    when = instant(pick(body, mapping.time), mapping.timezone, mapping.time)
    return Webhook(mapping, body, kind_name, ticket, when), kind


def ticket_events(body, mapping: HookMapping) -> list[dict]:
    """The §3 events of one webhook body, in the order the engine must apply them."""
    hook, kind = read_webhook(body, mapping)
    drafts = _BUILDERS[kind](hook)
    if not drafts:
        raise Ignored(f"{hook.kind_name!r} changes nothing the engine follows")
    utc = hook.time.astimezone(timezone.utc).isoformat()
    change = text(pick(body, mapping.change_id)) or f"{kind}@{utc}"
    # fields without a value are left out: §3 treats a missing field and null alike, and short
    # events are easier to read in the topic
    events = [{"id": f"{mapping.tool}:{hook.ticket}:{key or change}:{what}", "type": f"ticket.{what}", "time": utc,
               "ticket": hook.ticket, **{k: v for k, v in fields.items() if v is not None}}
              for what, fields, key in drafts]
    _check(events)
    return events


def _check(events: list[dict]) -> None:
    ids = [e["id"] for e in events]
    if len(set(ids)) != len(ids):
        # e.g. a change log naming the status twice: two events with one id would lose one of them
        raise AckRefused(422, f"the webhook maps to repeated events ({', '.join(ids)})")
    for event in events:
        try:
            decode_event(event)
        except Rejected as err:
            raise AckRefused(422, f"{event['type']}: {err.reason}") from None
