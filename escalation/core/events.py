"""Input events (DESIGN.md §3) and their decoding.

Invariants: every decoded event has a non-empty ``id`` and a timezone-aware ``time`` (naive times
are rejected); fields the contract does not name are ignored so producers can add fields. Decoding
never raises anything but ``Rejected``, whose ``reason`` names the field and the problem.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Union

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator


class Rejected(Exception):
    """An input that cannot be processed; ``reason`` is one line for the dead-letter record."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: Annotated[str, Field(min_length=1)]
    time: AwareDatetime


class _TicketEvent(_Event):
    ticket: Annotated[str, Field(min_length=1)]


class TicketOpened(_TicketEvent):
    type: Literal["ticket.opened"]
    priority: str
    service: str
    agreement: str | None = None
    customer: str | None = None
    summary: str | None = None
    assignee: str | None = None
    group: str | None = None
    attributes: dict = {}

    @model_validator(mode="after")
    def _agreement_or_customer(self) -> "TicketOpened":
        if self.agreement is None and self.customer is None:
            raise ValueError("ticket.opened needs 'agreement', or 'customer' with 'service'")
        return self


class TicketAcknowledged(_TicketEvent):
    type: Literal["ticket.acknowledged"]


class TicketUpdated(_TicketEvent):
    type: Literal["ticket.updated"]
    public: bool = True


class TicketStatusChanged(_TicketEvent):
    type: Literal["ticket.status_changed"]
    status: str


class TicketPriorityChanged(_TicketEvent):
    type: Literal["ticket.priority_changed"]
    priority: str


class TicketAssigned(_TicketEvent):
    type: Literal["ticket.assigned"]
    assignee: str | None = None
    group: str | None = None


class TicketResolved(_TicketEvent):
    type: Literal["ticket.resolved"]


class TicketReopened(_TicketEvent):
    type: Literal["ticket.reopened"]


class TicketClosed(_TicketEvent):
    type: Literal["ticket.closed", "ticket.cancelled"]


class MetricObserved(BaseModel):
    """Good/total counts of one SLI over ``[start, end)``; the event's time is ``end``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: Annotated[str, Field(min_length=1)]
    type: Literal["metric.observed"]
    service: Annotated[str, Field(min_length=1)]
    sli: Annotated[str, Field(min_length=1)]
    start: AwareDatetime
    end: AwareDatetime
    good: Annotated[float, Field(ge=0)]
    total: Annotated[float, Field(ge=0)]

    @property
    def time(self) -> datetime:
        return self.end

    @model_validator(mode="after")
    def _consistent(self) -> "MetricObserved":
        if self.end <= self.start:
            raise ValueError("'end' must be after 'start'")
        if self.good > self.total:
            raise ValueError(f"good ({self.good:g}) exceeds total ({self.total:g})")
        return self


TicketEvent = Union[
    TicketOpened, TicketAcknowledged, TicketUpdated, TicketStatusChanged, TicketPriorityChanged,
    TicketAssigned, TicketResolved, TicketReopened, TicketClosed,
]
Event = Union[TicketEvent, MetricObserved]
_ADAPTER: TypeAdapter = TypeAdapter(Annotated[Event, Field(discriminator="type")])


def decode_event(raw: bytes | str | dict) -> Event:
    """Decode one JSON event; raise Rejected with a reason naming what is wrong and where."""
    try:
        if isinstance(raw, dict):
            return _ADAPTER.validate_python(raw)
        return _ADAPTER.validate_json(raw)
    except ValidationError as err:
        raise Rejected(_reason(err)) from None


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

