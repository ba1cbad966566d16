"""Reading values out of a ticket tool's webhook body (pure).

Invariants: :func:`pick` never raises (a missing field is ``None``); :func:`text` gives a
non-empty string or ``None`` and never turns a boolean, an object or a list into text (a ticket
id ``1234`` is ``"1234"``, ``true`` is no id); :func:`instant` gives a timezone-aware instant
or raises :class:`~escalation.delivery.ack.AckRefused` (422): a webhook without a usable time
cannot be given a deterministic id, so it is refused rather than stamped with the receive time.
"""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from escalation.delivery.ack import AckRefused


def pick(payload, path: str | None):
    """The value at a dotted ``path`` (a number indexes a list), or ``None``."""
    if path is None:
        return None
    value = payload
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def text(value) -> str | None:
    """A scalar as stripped text (``None`` when missing or empty); booleans and containers are no text."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    return None


def _epoch(value: int | float) -> datetime:
    # Jira's `timestamp` is epoch milliseconds; take anything past 1e11 (year 5138 in seconds) as ms
    seconds = value / 1000 if value > 1e11 else value
    try:
        return datetime.fromtimestamp(seconds, timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise AckRefused(422, f"time {value!r} is out of range") from None


def instant(value, zone: str, where: str) -> datetime:
    """The change's time from RFC 3339 / ISO 8601 text (a naive one is read in ``zone``: ServiceNow's
    ``sys_updated_on`` is naive UTC) or epoch seconds / milliseconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value != value or value <= 0:       # NaN never equals itself
            raise AckRefused(422, f"{where}: {value!r} is no time")
        return _epoch(value)
    raw = text(value)
    if raw is None:
        raise AckRefused(422, f"{where}: missing: the change's time is needed for a deterministic id")
    if raw.isdigit():
        return _epoch(int(raw))
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise AckRefused(422, f"{where}: {raw!r} is not an RFC 3339 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(zone))
