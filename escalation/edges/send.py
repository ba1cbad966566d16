"""``escalation send FILE|-``: validate JSONL events with the core's decoder and produce the good
ones to the input topics (DESIGN.md §3, §10, §14).

Invariants:
- a line is sent exactly when :func:`escalation.core.events.decode_event` accepts it: validation
  is the core's, never re-implemented here, so ``send`` refuses what the engine would dead-letter
  for its shape (lifecycle reasons, e.g. an event for an unknown ticket, are the engine's to judge);
- the bytes sent are the line as written (without its line end), so the engine decodes exactly
  what was checked; a UTF-8 byte-order mark at the start of the input is skipped, blank lines are
  ignored (not counted as rejected);
- routing: metric events go to ``metrics`` keyed by ``service``; ticket events (and
  ``notification.acknowledged``) to ``tickets`` keyed by ``ticket``; ``agreement.terminated`` to
  ``tickets`` keyed by ``agreement`` (§11, §13); a decoded event with none of these is rejected;
- every rejected line is reported with its number and reason and is not sent;
- with a ``clock`` (the wall clock plus the live ``max_future_skew``, read per line), an event
  ahead of it is refused as the worker would dead-letter it ("from the future", §10).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Iterable, Iterator

from escalation.core.events import Rejected, decode_event, from_the_future

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Accepted:
    line: int
    topic: str          # "tickets" | "metrics" (before the prefix)
    key: bytes
    value: bytes


@dataclass(frozen=True)
class Refused:
    line: int
    reason: str


@dataclass
class Tally:
    lines: int = 0
    sent: dict[str, int] = field(default_factory=lambda: {"tickets": 0, "metrics": 0})
    rejected: int = 0

    def summary(self, name: str) -> str:
        total = sum(self.sent.values())
        return (f"{name}: sent {total} event{'s' if total != 1 else ''} ({self.sent['tickets']} to tickets, "
                f"{self.sent['metrics']} to metrics), rejected {self.rejected} of {self.lines} lines")


def route(event) -> tuple[str, str]:
    """(topic, key) of a decoded event; ``Rejected`` when the contract names no topic for it."""
    type_ = getattr(event, "type", "")
    if type_ == "metric.observed":
        return "metrics", event.service
    if type_ == "agreement.terminated":
        return "tickets", event.agreement
    ticket = getattr(event, "ticket", None)
    if isinstance(ticket, str) and ticket:
        return "tickets", ticket
    raise Rejected(f"no input topic for event type {type_!r}")


#: the wall clock plus the allowed skew, and the skew (seconds): see the module docstring
Clock = Callable[[], tuple[datetime, float]]


def check_line(number: int, raw: bytes, clock: Clock | None = None) -> Accepted | Refused | None:
    """One physical line: None when blank, else accepted (with its topic and key) or refused."""
    value = raw.rstrip(b"\r\n")
    if not value.strip():
        return None
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as err:
        return Refused(number, f"invalid UTF-8 at byte {err.start}")
    try:
        event = decode_event(text)
        topic, key = route(event)
    except Rejected as err:
        return Refused(number, err.reason)
    future = None if clock is None else from_the_future(event, *clock(), "sender's")
    if future is not None:
        return Refused(number, future)
    return Accepted(number, topic, key.encode(), value)


def check_lines(lines: Iterable[bytes], clock: Clock | None = None) -> Iterator[Accepted | Refused]:
    for number, raw in enumerate(lines, start=1):
        if number == 1:
            raw = raw.removeprefix(BOM)
        result = check_line(number, raw, clock)
        if result is not None:
            yield result


async def send_lines(lines: IO[bytes], producer, topics: dict[str, str], report, tally: Tally,
                     window: int = 1000, clock: Clock | None = None) -> None:
    """Produce the accepted lines; ``report(Refused)`` for the others.

    At most ``window`` sends are in flight, so memory stays bounded on a large file; every send
    is awaited before returning (an error from the broker propagates: the run did not complete).
    """
    pending = []
    for result in check_lines(lines, clock):
        tally.lines = result.line
        if isinstance(result, Refused):
            tally.rejected += 1
            report(result)
            continue
        pending.append(await producer.send(topics[result.topic], result.value, key=result.key))
        tally.sent[result.topic] += 1
        if len(pending) >= window:
            for fut in pending:
                await fut
            pending.clear()
    for fut in pending:
        await fut
