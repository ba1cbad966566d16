"""What a revision changes (``escalation diff OLD.yaml NEW.yaml``): targets, levels, recipients,
money and caps, term and parties, each keyed by what it means rather than by list position.

Invariant: ``changes(a, a) == []``; every clause of either agreement appears under exactly one
key of :func:`clauses`, so a change anywhere in those sections shows up as one added, removed or
changed line. Pure: no I/O.
"""

from __future__ import annotations

from escalation.agreement.models import Agreement

SECTIONS = ("targets", "levels", "recipients", "money", "caps", "term", "parties", "clocks", "calendars")


def _dump(model) -> object:
    return model.model_dump(mode="json", exclude_defaults=True) if hasattr(model, "model_dump") else model


def clauses(a: Agreement) -> dict[str, object]:
    """Every clause under a meaningful key, ``<section> <name>``."""
    out: dict[str, object] = {}
    for t in a.targets:
        key = f"{t.clock}/{t.priority}" + (f"/opened_in:{t.opened_in}" if getattr(t, "opened_in", None) else "")
        out[f"targets {key}"] = _dump(t)
    for policy in a.escalation:
        out[f"levels {policy.id} when"] = _dump(policy.when)
        for level in policy.levels:
            out[f"levels {policy.id}/level {level.level}"] = _dump(level)
    for name, target in a.notification_targets.items():
        out[f"recipients {name}"] = _dump(target)
    out["money currency"] = a.currency
    for name, fee in a.fees.items():
        out[f"money fees.{name}"] = str(fee)
    for remedy in a.remedies:
        out[f"money remedy {remedy.id}"] = _dump(remedy)
    for i, cap in enumerate(a.caps):
        out[f"caps {cap.period} #{i + 1}"] = _dump(cap)
    out["term validity"] = None if a.validity is None else _dump(a.validity)
    for o in a.obligations:
        out[f"parties obligation {o.id}"] = _dump(o)
    out["parties kind"] = a.kind
    out["parties scope"] = None if a.scope is None else _dump(a.scope)
    out["parties"] = None if a.parties is None else _dump(a.parties)
    for name, clock in a.clocks.items():
        out[f"clocks {name}"] = _dump(clock)
    out["clocks on_priority_change"], out["clocks on_reopen"] = a.on_priority_change, a.on_reopen
    for name, cal in a.calendars.items():
        out[f"calendars {name}"] = _dump(cal)
    return out


def changes(old: Agreement, new: Agreement) -> list[tuple[str, str, object, object]]:
    """(sign, key, old value, new value): ``-`` removed, ``+`` added, ``~`` changed; in section
    order, then by key."""
    a, b = clauses(old), clauses(new)
    rows = []
    for key in set(a) | set(b):
        if key not in b:
            rows.append(("-", key, a[key], None))
        elif key not in a:
            rows.append(("+", key, None, b[key]))
        elif a[key] != b[key]:
            rows.append(("~", key, a[key], b[key]))
    order = {s: i for i, s in enumerate(SECTIONS)}
    return sorted(rows, key=lambda r: (order.get(r[1].split(" ")[0], len(SECTIONS)), r[1]))


def field_changes(old: object, new: object) -> list[str]:
    """The changed fields of two dict values as ``field: old -> new`` (whole values otherwise)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return [f"{old!r} -> {new!r}"]
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
