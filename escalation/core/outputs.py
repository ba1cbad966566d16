"""Output events: CloudEvents 1.0 envelopes with deterministic ids (DESIGN.md §4).

Invariants:
- ``id`` is a hash of what makes the output unique (agreement revision, incident, clock, cycle,
  threshold or level, repeat number), never of processing time, so a redelivered or recomputed
  output has the same id and at-least-once delivery never pages twice.
- ``time`` is the instant the condition became true, in UTC.
- Every output routes to exactly one output topic (``topic_for``).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

NOTIFICATIONS, REMEDIES, TIMELINE = "notifications", "remedies", "timeline"
#: every output type and its topic (DESIGN.md §9: notifications carry `escalation.*`, so the
#: alert lifecycle reaches the deliverer that consumes them); the one list of output types
OUTPUT_TOPICS = {
    "sla.warning": NOTIFICATIONS, "sla.breached": NOTIFICATIONS, "escalation.triggered": NOTIFICATIONS,
    "escalation.repeated": NOTIFICATIONS, "escalation.acknowledged": NOTIFICATIONS,
    "escalation.resolved": NOTIFICATIONS, "slo.burn_rate": NOTIFICATIONS,
    "penalty.assessed": REMEDIES, "credit.issued": REMEDIES, "credit.earned_back": REMEDIES,
    "sla.met": TIMELINE, "slo.attainment": TIMELINE, "slo.no_data": TIMELINE, "report.published": TIMELINE,
    "obligation.missed": TIMELINE,  # DESIGN.md §13: a customer obligation, no money
    "agreement.notice_due": TIMELINE, "agreement.renewed": TIMELINE, "agreement.expired": TIMELINE,  # §13 term
    # DESIGN.md §13: objective verdicts are reporting (timeline, like slo.attainment); money that
    # returns to the customer's invoice goes with the other money (remedies)
    "objective.attainment": TIMELINE, "objective.no_verdict": TIMELINE,
}


def topic_for(output_type: str) -> str:
    """The output topic (after the prefix) an output type goes to; everything else is timeline."""
    return OUTPUT_TOPICS.get(output_type, TIMELINE)


def output_id(*parts: object) -> str:
    """``str(uuid.UUID(bytes=sha256(parts)[:16], version=5))``, formatted directly (hot path)."""
    b = bytearray(hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50  # version 5
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def utc(instant: datetime) -> str:
    return instant.astimezone(timezone.utc).isoformat()


def cloudevent(source: str, type_: str, subject: str, time: datetime, id_parts: tuple, data: dict) -> dict:
    return {
        "specversion": "1.0",
        "id": output_id(source, type_, subject, *id_parts),
        "source": source,
        "type": type_,
        "subject": subject,
        "time": utc(time),
        "datacontenttype": "application/json",
        "data": data,
    }
