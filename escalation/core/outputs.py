"""Outputs: the typed records the core returns, and their CloudEvents 1.0 form at the edge (DESIGN.md §4).

The core builds :class:`Output` records (``output(...)``) and every consumer inside the process
(the period figures, the desk, reports, backtest, the CLI) folds over them: it switches on
``out.type`` (an :class:`OutputType`) and reads ``out.time`` (a UTC ``datetime``). An output
becomes a CloudEvent dict only where it leaves the process (``Output.cloudevent``: replay's JSONL,
the live publisher, JSON written by the CLI); a CloudEvent read back from a file becomes an
``Output`` again in one place (``Output.from_cloudevent``).

Invariants:
- ``id`` is a hash of what makes the output unique (agreement revision, incident, clock, cycle,
  threshold or level, repeat number), never of processing time, so a redelivered or recomputed
  output has the same id and at-least-once delivery never pages twice.
- ``time`` is the instant the condition became true, in UTC (``output`` converts).
- Every output type routes to exactly one output topic (``OUTPUT_TOPICS``, ``topic_for``).
- ``Output.from_cloudevent(o.cloudevent()) == o``, and the CloudEvent's key order and time format
  are fixed (consumers and checksums compare the JSON bytes).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum

NOTIFICATIONS, REMEDIES, TIMELINE = "notifications", "remedies", "timeline"


class OutputType(StrEnum):
    """The one list of output types (DESIGN.md §4, §12, §13)."""

    SLA_WARNING = "sla.warning"
    SLA_BREACHED = "sla.breached"
    SLA_MET = "sla.met"
    ESCALATION_TRIGGERED = "escalation.triggered"
    ESCALATION_REPEATED = "escalation.repeated"
    ESCALATION_ACKNOWLEDGED = "escalation.acknowledged"
    ESCALATION_RESOLVED = "escalation.resolved"
    SLO_BURN_RATE = "slo.burn_rate"
    SLO_ATTAINMENT = "slo.attainment"
    SLO_NO_DATA = "slo.no_data"
    PENALTY_ASSESSED = "penalty.assessed"
    CREDIT_ISSUED = "credit.issued"
    CREDIT_EARNED_BACK = "credit.earned_back"
    REPORT_PUBLISHED = "report.published"
    OBLIGATION_MISSED = "obligation.missed"
    AGREEMENT_NOTICE_DUE = "agreement.notice_due"
    AGREEMENT_RENEWED = "agreement.renewed"
    AGREEMENT_EXPIRED = "agreement.expired"
    OBJECTIVE_ATTAINMENT = "objective.attainment"
    OBJECTIVE_NO_VERDICT = "objective.no_verdict"


class ResolveReason(StrEnum):
    """Why an alert resolved (``escalation.resolved`` ``data.reason``, DESIGN.md §11)."""

    CLOCK_STOPPED = "clock_stopped"
    POLICY_NO_LONGER_APPLIES = "policy_no_longer_applies"
    TICKET_CLOSED = "ticket_closed"
    TICKET_CANCELLED = "ticket_cancelled"


class Direction(StrEnum):
    """Who owes a supporting agreement's penalty (``penalty.assessed`` ``data.direction``, §13)."""

    RECEIVABLE = "receivable"  # a vendor's (UnderpinningContract): owed to the provider
    PAYABLE = "payable"        # an internal team's (OperationalLevelAgreement)


T = OutputType
#: every output type's topic (DESIGN.md §9: notifications carry `escalation.*`, so the alert
#: lifecycle reaches the deliverer that consumes them; §13: a customer obligation, objective
#: verdicts and term events are timeline, money that returns to the invoice goes with remedies)
OUTPUT_TOPICS: dict[OutputType, str] = {
    T.SLA_WARNING: NOTIFICATIONS, T.SLA_BREACHED: NOTIFICATIONS, T.ESCALATION_TRIGGERED: NOTIFICATIONS,
    T.ESCALATION_REPEATED: NOTIFICATIONS, T.ESCALATION_ACKNOWLEDGED: NOTIFICATIONS,
    T.ESCALATION_RESOLVED: NOTIFICATIONS, T.SLO_BURN_RATE: NOTIFICATIONS,
    T.PENALTY_ASSESSED: REMEDIES, T.CREDIT_ISSUED: REMEDIES, T.CREDIT_EARNED_BACK: REMEDIES,
    T.SLA_MET: TIMELINE, T.SLO_ATTAINMENT: TIMELINE, T.SLO_NO_DATA: TIMELINE, T.REPORT_PUBLISHED: TIMELINE,
    T.OBLIGATION_MISSED: TIMELINE, T.AGREEMENT_NOTICE_DUE: TIMELINE, T.AGREEMENT_RENEWED: TIMELINE,
    T.AGREEMENT_EXPIRED: TIMELINE, T.OBJECTIVE_ATTAINMENT: TIMELINE, T.OBJECTIVE_NO_VERDICT: TIMELINE,
}
del T
assert set(OUTPUT_TOPICS) == set(OutputType), "every output type has a topic"

#: the verdicts of a clock cycle (reports and backtests: a breach wins over a met, ``verdicts``)
VERDICT_TYPES = (OutputType.SLA_MET, OutputType.SLA_BREACHED)
#: money outputs (the remedies a report or a backtest adds up)
MONEY_TYPES = (OutputType.PENALTY_ASSESSED, OutputType.CREDIT_ISSUED)
#: the escalations of a ticket clock (a level fired or repeated)
ESCALATION_TYPES = (OutputType.ESCALATION_TRIGGERED, OutputType.ESCALATION_REPEATED)


def topic_for(output_type: OutputType | str) -> str:
    """The output topic (after the prefix) an output type goes to; anything else is timeline."""
    return OUTPUT_TOPICS.get(output_type, TIMELINE)


def output_id(*parts: object) -> str:
    """``str(uuid.UUID(bytes=sha256(parts)[:16], version=5))``, formatted directly (hot path)."""
    h = hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()
    # hex digit 12 becomes the version (5); digit 16 keeps its low two bits under the RFC 4122
    # variant bits "10" (what ``uuid`` does to bytes 6 and 8, done on the text)
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


def utc(instant: datetime) -> str:
    """``instant`` in UTC as RFC 3339 text (``isoformat``)."""
    if instant.tzinfo is not timezone.utc:
        instant = instant.astimezone(timezone.utc)
    text = _ISO.get(instant)  # a memoised text without the call (the core's instants are UTC)
    return isoformat(instant) if text is None else text


# ``datetime.isoformat`` costs several µs (it formats through printf) and the outputs of a step
# quote the same few instants again and again (their time, a clock's cycle start, a deadline),
# so the texts of UTC instants are memoised. Only UTC ones: an aware datetime hashes and
# compares as an instant, so a key with another offset would find the UTC text. Bounded:
# cleared when full.
_ISO: dict[datetime, str] = {}
_ISO_MAX = 1 << 12


def isoformat(t: datetime) -> str:
    """``t.isoformat()``, memoised for UTC instants (see above); the state codec uses it too."""
    if t.tzinfo is not timezone.utc:
        return t.isoformat()
    text = _ISO.get(t)
    if text is None:
        if len(_ISO) >= _ISO_MAX:
            _ISO.clear()
        text = _ISO[t] = t.isoformat()
    return text


@dataclass(slots=True)
class Output:
    """One output of the core. ``data`` is the CloudEvent's JSON-ready ``data`` object; the core
    may still add to it (a late event's note, an excused breach) before the output leaves."""

    type: OutputType
    time: datetime  # UTC
    source: str
    subject: str
    id: str
    data: dict

    @property
    def topic(self) -> str:
        return OUTPUT_TOPICS[self.type]

    def cloudevent(self) -> dict:
        """The CloudEvents 1.0 envelope (the one encoder: fixed key order, RFC 3339 UTC time)."""
        return {
            "specversion": "1.0",
            "id": self.id,
            "source": self.source,
            "type": self.type._value_,  # the plain attribute: ``.value`` is a slower property
            "subject": self.subject,
            "time": isoformat(self.time),
            "datacontenttype": "application/json",
            "data": self.data,
        }

    @classmethod
    def from_cloudevent(cls, event: dict) -> "Output":
        """The one decoder: a CloudEvent written by ``cloudevent`` (ValueError for an unknown type)."""
        return cls(OutputType(event["type"]), datetime.fromisoformat(event["time"]).astimezone(timezone.utc),
                   event["source"], event["subject"], event["id"], event["data"])


def output(source: str, type_: OutputType, subject: str, time: datetime, id_parts: tuple, data: dict) -> Output:
    """A new output; its id hashes (source, type, subject, *id_parts)."""
    return Output(type_, time.astimezone(timezone.utc), source, subject,
                  output_id(source, type_, subject, *id_parts), data)
