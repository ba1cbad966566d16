"""Input events (DESIGN.md §3) and their decoding.

Invariants (DESIGN.md §10):
- every decoded event has a non-empty ``id`` and a timezone-aware ``time`` (naive times are
  rejected) in the plausible window ``[1970-01-01T00:00:00Z, 2200-01-01T00:00:00Z)``, and so do a
  slice's ``start`` and ``end``; a timestamp is an RFC 3339 string, never a number;
- types are strict, nothing is coerced: a string is not a number, a boolean is not a count,
  ``public`` is a JSON boolean; counts are integers in ``[0, MAX_COUNT]`` with ``good <= total``
  (``NaN``, ``Infinity``, ``1e400`` and ``5.0`` are floats, hence rejected);
- fields the contract does not name are ignored so producers can add fields;
- decoding never raises anything but ``Rejected``, whose ``reason`` names the field and the problem.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal, Union, get_args

from pydantic import (AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, Strict,
                      TypeAdapter, ValidationError, model_validator)

#: the plausible time window ``[EARLIEST, LATEST)`` of event times and slice bounds (DESIGN.md §10)
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)
#: the largest count a slice may carry: counts are summed as floats, which are exact up to 2**53
MAX_COUNT = 2**53
# An RFC 3339 date-time (its section 5.6): full date, "T" (or "t", or a space as its note allows),
# time with an optional fraction, then "Z" or a +hh:mm offset. Seconds may be left out (hh:mm, as
# people write times; RFC 3339 wants them, ISO 8601 does not). pydantic alone also takes numbers
# ("1700000000" as Unix seconds), "+0100", other separators and ISO 8601's basic format.
# The offset is optional here, and text with a date first and no offset at all goes on to the
# parser, only so that a naive time is refused with the parser's own, clearer reason.
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:\d{2})?")
_DATE_FIRST = re.compile(r"\d{4}-\d{2}-\d{2}")
_ANY_OFFSET = re.compile(r"\d{2}:\d{2}.*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$")


def _timestamp_text(value):
    """Before parsing: only RFC 3339 text (or, for decoded dicts, a datetime) is a timestamp."""
    if isinstance(value, str):  # text first: what JSON gives
        if RFC3339.fullmatch(value) or (_DATE_FIRST.match(value) and not _ANY_OFFSET.search(value)):
            return value
    elif isinstance(value, datetime):
        return value
    raise ValueError("not an RFC 3339 timestamp such as 2026-03-02T09:00:00+01:00 (numbers are not timestamps)")


def plausible(value: datetime) -> bool:
    """Whether an aware instant lies in ``[EARLIEST, LATEST)``. Comparing aware datetimes never
    overflows, even for ``9999-12-31T23:59:59-01:00`` (converting it would), and everything the
    core derives from an instant in the window (deadlines, periods, holidays) stays far from
    ``datetime``'s limits."""
    # inside whatever the offset (< 1 day) for these years; saves two slow comparisons
    return 1970 < value.year < 2199 or EARLIEST <= value < LATEST


def _plausible(value: datetime) -> datetime:
    """After parsing: inside ``[EARLIEST, LATEST)`` (:func:`plausible`)."""
    if not plausible(value):
        raise ValueError(f"{value.isoformat()} is outside the plausible range "
                         f"[{EARLIEST.isoformat()}, {LATEST.isoformat()})")
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_timestamp_text), AfterValidator(_plausible)]
Text = Annotated[str, Strict()]
Key = Annotated[str, Strict(), Field(min_length=1)]
Count = Annotated[int, Strict(), Field(ge=0, le=MAX_COUNT)]


class Rejected(Exception):
    """An input that cannot be processed; ``reason`` is one line for the dead-letter record."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class StepFailed(Exception):
    """An input failed (``cause``: ``Rejected`` or an unexpected error) after its step had moved
    the clock: the ``outputs`` that fired in that move are real and are still published; the input
    itself is dead-lettered for ``cause``. Raised only when the move fired something."""

    def __init__(self, outputs: list, cause: Exception):
        self.outputs, self.cause = outputs, cause
        super().__init__(str(cause))


#: an internal error's message is cut to this many characters in its dead letter
INTERNAL_MESSAGE_LIMIT = 1000


def internal_error_reason(err: BaseException) -> str:
    """The dead-letter reason of an unexpected exception (DESIGN.md §10), replay and live alike."""
    message = str(err)
    if len(message) > INTERNAL_MESSAGE_LIMIT:
        message = message[:INTERNAL_MESSAGE_LIMIT] + "..."
    return f"internal error: {type(err).__name__}: {message}"


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: Key
    time: Timestamp


class _TicketEvent(_Event):
    ticket: Key


class TicketOpened(_TicketEvent):
    type: Literal["ticket.opened"]
    priority: Text
    service: Text
    agreement: Text | None = None
    customer: Text | None = None
    summary: Text | None = None
    assignee: Text | None = None
    group: Text | None = None
    attributes: Annotated[dict, Strict()] = {}

    @model_validator(mode="after")
    def _agreement_or_customer(self) -> "TicketOpened":
        if self.agreement is None and self.customer is None:
            raise ValueError("ticket.opened needs 'agreement', or 'customer' with 'service'")
        return self


class TicketAcknowledged(_TicketEvent):
    type: Literal["ticket.acknowledged"]


class TicketUpdated(_TicketEvent):
    type: Literal["ticket.updated"]
    public: Annotated[bool, Strict()] = True


class TicketStatusChanged(_TicketEvent):
    type: Literal["ticket.status_changed"]
    status: Text
    vendor: Text | None = None   # the vendor the ticket now waits on (DESIGN.md §13 scope)


class TicketPriorityChanged(_TicketEvent):
    type: Literal["ticket.priority_changed"]
    priority: Text


class TicketAssigned(_TicketEvent):
    type: Literal["ticket.assigned"]
    assignee: Text | None = None
    group: Text | None = None


class TicketResolved(_TicketEvent):
    type: Literal["ticket.resolved"]


class TicketReopened(_TicketEvent):
    type: Literal["ticket.reopened"]


class TicketClosed(_TicketEvent):
    type: Literal["ticket.closed", "ticket.cancelled"]


class NotificationAcknowledged(_TicketEvent):
    """An on-call tool's acknowledgement of one alert (DESIGN.md §11): changes no SLA clock."""

    type: Literal["notification.acknowledged"]
    dedup_key: Key
    by: Key
    source: Text | None = None


class AgreementTerminated(_Event):
    """Notice that an agreement ends at its term end (DESIGN.md §13); on ``tickets``, keyed by agreement."""

    type: Literal["agreement.terminated"]
    agreement: Key
    by: Literal["customer", "provider"]


class MetricObserved(BaseModel):
    """Good/total counts of one SLI over ``[start, end)``; the event's time is ``end``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: Key
    type: Literal["metric.observed"]
    service: Key
    sli: Key
    start: Timestamp
    end: Timestamp
    good: Count
    total: Count

    @property
    def time(self) -> datetime:
        return self.end

    @model_validator(mode="after")
    def _consistent(self) -> "MetricObserved":
        if self.end <= self.start:
            raise ValueError("'end' must be after 'start'")
        if self.good > self.total:
            raise ValueError(f"good ({self.good}) exceeds total ({self.total})")
        return self


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passing, as an input: ``Engine.step(Tick(at))`` fires what is due before ``at`` (at it
    too when ``inclusive``, the default). Not decoded from JSON: replay's ``--until`` and the
    live ticks (``parse_tick``) make it. Changes no clock backwards (an older tick fires nothing)."""

    at: datetime
    inclusive: bool = True


TicketEvent = Union[
    TicketOpened, TicketAcknowledged, TicketUpdated, TicketStatusChanged, TicketPriorityChanged,
    TicketAssigned, TicketResolved, TicketReopened, TicketClosed, NotificationAcknowledged,
]
Event = Union[TicketEvent, MetricObserved, AgreementTerminated]
# The kind of an input, looked up by its class (the engine branches on it once or twice a step):
# the event classes are pydantic models, whose ``isinstance`` goes through ``ABCMeta`` (~0.25 µs a
# test), while the answer only depends on the class, so ``input_kind`` works it out once per class.
TICK, METRIC, TERMINATION, OPENING, TICKET = range(1, 6)  # all true: ``INPUT_KINDS.get(...) or input_kind(...)``
INPUT_KINDS: dict[type, int] = {}


def input_kind(item) -> int:
    """``item``'s kind: a :class:`Tick`, a metric slice, a termination, an opening or another
    ticket event (``INPUT_KINDS`` filled on first sight of its class)."""
    kind = INPUT_KINDS.get(type(item))
    if kind is None:
        kind = INPUT_KINDS[type(item)] = (
            TICK if isinstance(item, Tick) else METRIC if isinstance(item, MetricObserved)
            else TERMINATION if isinstance(item, AgreementTerminated) else OPENING if isinstance(item, TicketOpened)
            else TICKET)
    return kind


_ADAPTER: TypeAdapter = TypeAdapter(Annotated[Event, Field(discriminator="type")])
# its compiled validator, called directly: ``TypeAdapter.validate_*`` is a Python wrapper that only
# passes default options on, at a cost of about 1 µs an event
_VALIDATOR = _ADAPTER.validator


def decode_event(raw: bytes | str | dict) -> Event:
    """Decode one JSON event; raise Rejected with a reason naming what is wrong and where.

    The decoded times are UTC (``timezone.utc``): the same instants, but comparing two aware
    datetimes with different ``tzinfo`` objects costs ~2 µs against ~40 ns with the same one, and
    the core compares times many times per event. The offset the event was written with is kept
    for the texts that quote the event's time (:func:`as_written`)."""
    try:
        event = _VALIDATOR.validate_python(raw) if isinstance(raw, dict) else _VALIDATOR.validate_json(raw)
    except ValidationError as err:
        raise Rejected(_reason(err)) from None
    fields = event.__dict__
    # ``type() is``: the validator makes these exact classes, and a pydantic class's ``isinstance``
    # goes through ``ABCMeta`` (several times slower)
    for name in ("start", "end") if type(event) is MetricObserved else ("time",):
        t = fields[name]
        if t.tzinfo is not timezone.utc:
            fields[name] = t.astimezone(timezone.utc)
            fields.setdefault(_WRITTEN_IN, t.tzinfo)  # not a field: pydantic never reads it
    return event


_WRITTEN_IN = "_written_in"  # the decoded event's own offset (its tzinfo), when not UTC


def as_written(t: datetime, event) -> datetime:
    """``t`` in the offset ``event``'s time was written with (how texts quote an event's time)."""
    zone = getattr(event, "__dict__", {}).get(_WRITTEN_IN)
    return t if zone is None else t.astimezone(zone)


def from_the_future(event, latest: datetime, skew: float, whose: str) -> str | None:
    """Why a live input is refused for lying ahead of the wall clock (DESIGN.md §10), else None.

    ``latest`` is the wall clock plus ``skew`` seconds, read by the caller (the core reads no
    clock); a metric slice counts by its end. ``whose`` names that clock in the reason (the
    worker's, the sender's), so one broken producer is told the same thing wherever it is caught."""
    if event.time <= latest:
        return None
    return (f"from the future: time {as_written(event.time, event).isoformat()} is more than {skew:g} s ahead "
            f"of the {whose} clock ({latest.isoformat()} + skew)")


def _reason(err: ValidationError) -> str:
    parts = []
    for item in err.errors(include_url=False):
        kind, loc = item["type"], [str(p) for p in item["loc"]]
        if kind == "json_invalid":
            return f"malformed JSON: {item['ctx'].get('error', item['msg'])}"
        if kind == "union_tag_invalid":
            return f"unknown event type {item['input'].get('type')!r}" if isinstance(item["input"], dict) else "unknown event type"
        if kind == "union_tag_not_found":
            return "missing field 'type'"
        if not loc or kind in ("model_attributes_type", "model_type"):
            return f"an event must be a JSON object ({item['msg']})"
        field = ".".join(loc[1:]) if len(loc) > 1 else ""
        if kind == "timezone_aware":
            parts.append(f"field '{field}': naive timestamp, an offset is required (RFC 3339)")
        elif kind == "missing":
            parts.append(f"missing field '{field}'")
        else:
            where = f"field '{field}': " if field else f"{loc[0]}: " if loc else ""
            parts.append(f"{where}{item['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)



_ONE_US = timedelta(microseconds=1)


def id_hash(event_id: str) -> int:
    """A stable 64-bit digest of an input id (not Python's per-process ``hash``): what the state
    remembers of an id (8 bytes, whatever the id looks like). Two ids of one incident or stream
    share a digest with probability ~2**-64; the later one would be taken for a repeat."""
    global _LAST_ID
    last = _LAST_ID
    if last[0] is event_id:  # a step asks twice for the same id object: is it a repeat, then remember it
        return last[1]
    digest = _digest64(event_id.encode("utf-8", "surrogatepass"))
    _LAST_ID = (event_id, digest)  # one rebinding: a reader in another thread sees a whole pair
    return digest


_LAST_ID: tuple = (None, 0)  # id_hash's memo of the last id it digested (a pure function's cache)


def content_digest(event: Event) -> int:
    """A stable 64-bit digest of what an event says (never 0, which marks "not recorded").

    Content is the contract fields as decoded (fields the contract does not name are ignored,
    as everywhere) with times as UTC instants, so a redelivery, or a re-export with another
    offset, has the same digest and a repeated id with other content has another. The fields
    are plain JSON values (str, int, bool, None, dicts and lists of them), whose ``repr`` is
    stable across processes (unlike ``hash``).
    """
    fields = event.__dict__
    times = _INSTANTS.get(type(event))
    if times is None:  # not a decoded event class: every datetime value is an instant
        values = [(v - EARLIEST) // _ONE_US if isinstance(v, datetime) else v
                  for k, v in fields.items() if k != _WRITTEN_IN]
    else:  # the same list, without a type test per field
        values = [*fields.values()]
        if _WRITTEN_IN in fields:
            del values[-1]
        for i in times:
            values[i] = (values[i] - EARLIEST) // _ONE_US
    return _digest64(repr((type(event).__name__, values)).encode("utf-8", "surrogatepass")) or 1


# Where the instants are among an event class's field values: a decoded event's ``__dict__``
# holds its fields in declaration order (how pydantic builds it), then ``_WRITTEN_IN`` when
# ``decode_event`` added it, last; only the ``Timestamp`` fields hold datetimes (the others are
# strict text, booleans, counts and a JSON object).
_INSTANTS = {cls: tuple(i for i, f in enumerate(cls.model_fields.values()) if f.annotation is AwareDatetime)
             for cls in get_args(Event)}


# An empty 8-byte BLAKE2b state: copying it costs half of building one (keyword arguments)
_BLAKE2B_8 = hashlib.blake2b(digest_size=8)


def _digest64(data: bytes) -> int:
    """``int.from_bytes(blake2b(data, digest_size=8).digest(), "big")``: the stable 64-bit
    digest behind ``id_hash`` and ``content_digest``."""
    h = _BLAKE2B_8.copy()
    h.update(data)
    return int.from_bytes(h.digest(), "big")
