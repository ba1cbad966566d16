"""The live engine's own records: dead letters, ticks, and the internal desk topic's records.

- a dead letter carries the reason, where the record was, and its bytes (utf-8 text or base64);
- a tick is ``{"tick": <RFC 3339 instant>}`` on ``<app_id>-ticks`` and becomes a core
  :class:`~escalation.core.events.Tick` (inclusive: it fires what is due at its instant too); a
  live one also says which input offsets were applied before it was made (``after``);
- the desk topic carries desk records (penalties, credits, report partials, terminations) with
  the input source that produced them, and marks (a source has fired everything up to an instant).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import orjson

from escalation.core.events import Tick
from escalation.core.money.desk import item_to_dict


def deadletter_record(reason: str, value: bytes | None, key: bytes | None, topic: str, partition: int,
                      offset: int, duplicate: bool = False) -> dict:
    """The dead-letter value: reason, where the record was, and its bytes (utf-8 text or base64);
    ``duplicate: true`` marks a repeated id with other content (ignored, shown, DESIGN.md §10)."""
    rec: dict[str, Any] = {"reason": reason, "topic": topic, "partition": partition, "offset": offset}
    if duplicate:
        rec["duplicate"] = True
    for name, raw in (("key", key), ("value", value)):
        if raw is None:
            rec[name] = None
            continue
        try:
            rec[name] = raw.decode("utf-8")
        except UnicodeDecodeError:
            rec[name] = base64.b64encode(raw).decode()
            rec[f"{name}_encoding"] = "base64"
    return rec


def parse_tick(value: bytes) -> Tick:
    """A tick record as the core's input (ValueError/KeyError/TypeError if it is not one)."""
    data = orjson.loads(value)
    instant = datetime.fromisoformat(str(data["tick"]).replace("Z", "+00:00"))
    if instant.tzinfo is None:
        raise ValueError("naive tick instant")
    return Tick(instant)


def tick_after(value: bytes | None) -> dict[str, int]:
    """A tick's ``after`` offsets (``{topic: next offset}`` applied before it was made); ``{}``
    for a tick without them (manual ticks) or a bad one (dead-lettered as such by its agent)."""
    try:
        after = orjson.loads(value or b"{}").get("after") or {}
        return {str(t): int(o) for t, o in after.items() if isinstance(o, int) and not isinstance(o, bool)}
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return {}


def desk_record(item, src: int) -> bytes:
    """An internal desk-topic record: a penalty, credit or report partial from input source ``src``."""
    return orjson.dumps({**item_to_dict(item), "src": src})


def mark_record(src: int, at: datetime, inclusive: bool) -> bytes:
    """An internal desk-topic record: input source ``src`` has fired everything up to ``at``."""
    return orjson.dumps({"kind": "mark", "src": src, "at": at.isoformat(), "inclusive": inclusive})
