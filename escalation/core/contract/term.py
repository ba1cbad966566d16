"""Term and renewal of an agreement (DESIGN.md §13 ``validity: {start, end, renewal: {term, notice}}``).

Per agreement id (the renewal clause of its highest loaded revision), term ``k`` (0 = the written
validity) ends on the day ``end_k`` = ``validity.end`` + ``k`` × ``term`` (calendar months; the
last day of the term, inclusive). In the agreement's time zone, at local midnight:
- ``term_end_k``    = the start of the day after ``end_k`` (the instant the term is over);
- ``deadline_k``    = ``term_end_k`` − ``notice`` (days or calendar months): a termination must
  arrive *before* it; the last day to give notice is the day before it;
- ``notice_due_k``  = the start of the day 30 days before that last day.

Outputs (timeline, subject = the agreement id, ids from (agreement, term, type)):
``agreement.notice_due`` at ``notice_due_k`` (not when a termination already arrived, nor for
a renewed term whose reminder instant is not after the renewal: terms shorter than notice + 30 days),
``agreement.renewed`` at ``term_end_k`` (the validity extends by ``term``: term ``k + 1``), or,
when an ``agreement.terminated`` input arrived before ``deadline_k``, ``agreement.expired`` at
``term_end_k`` and nothing more. A termination after the deadline ends the following term.
The first termination counts; later ones change nothing. ``expires_at`` names the instant the
final term is over as soon as the termination is known (the desk stops money and reports there,
``core/desk.py``). State: ``{"term": k, "notice_sent":
bool, "terminated": {id, at, by} | None, "expired": bool}``, kept by the desk per agreement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from escalation.agreement.parties import add_months, notice_span, term_months
from escalation.core.codec import record
from escalation.core.events import Rejected
from escalation.core.outputs import Output, OutputType, output, utc

NOTICE_REMINDER_DAYS = 30


@record
@dataclass(frozen=True, slots=True)
class Termination:
    """An ``agreement.terminated`` input on its way to the desk that keeps the agreement's term."""

    agreement: str
    revision: int
    id: str
    at: datetime
    by: str



def check(registry, event):
    """The agreement an ``agreement.terminated`` ends; Rejected when it has no renewal clause."""
    compiled = registry.latest(event.agreement)
    validity = compiled.agreement.validity
    if validity is None or validity.renewal is None:
        raise Rejected(f"agreement {event.agreement!r} has no validity.renewal: there is no renewal to terminate")
    return compiled


def fresh() -> dict:
    return {"term": 0, "notice_sent": False, "terminated": None, "expired": False}


def instants(compiled, k: int) -> dict:
    """Term ``k``'s days and instants (see the module docstring)."""
    validity = compiled.agreement.validity
    renewal = validity.renewal
    end = add_months(validity.end + timedelta(days=1), k * term_months(renewal.term)) - timedelta(days=1)
    after = end + timedelta(days=1)
    count, unit = notice_span(renewal.notice)
    deadline_day = after - timedelta(days=count) if unit == "d" else add_months(after, -count)
    last = deadline_day - timedelta(days=1)
    midnight = lambda d: datetime.combine(d, time(0), compiled.tz)  # noqa: E731
    return {"end": end, "term_end": midnight(after), "deadline": midnight(deadline_day), "last_day": last,
            "notice_due": midnight(last - timedelta(days=NOTICE_REMINDER_DAYS))}


def next_event(compiled, state: dict) -> tuple[datetime, str] | None:
    """(instant, output type) of the agreement's next term event, or None once expired."""
    if state["expired"]:
        return None
    t = instants(compiled, state["term"])
    if not state["notice_sent"] and state["terminated"] is None:
        return t["notice_due"], OutputType.AGREEMENT_NOTICE_DUE
    return t["term_end"], "agreement.term_end"


def expires_at(compiled, state: dict) -> datetime | None:
    """The instant the agreement is over (``term_end`` of its final term), or None while it renews.

    The final term is the first term ``k`` >= ``state["term"]`` whose ``deadline_k`` is after the
    recorded termination: the term ``_term_end`` will expire (so this agrees with the
    ``agreement.expired`` output, which it can name before that output fires). Invariant: a
    termination that makes an instant ``x`` fall after the expiry came at ``at`` < ``x``, so a
    caller that asks once every source has passed ``x`` gets the same answer live and in replay."""
    term = state["terminated"]
    if term is None:
        return None
    k, at = state["term"], datetime.fromisoformat(term["at"])
    while not state["expired"] and at >= instants(compiled, k)["deadline"]:
        k += 1
    return instants(compiled, k)["term_end"]


def terminate(state: dict, item: Termination) -> None:
    """Record the first termination (later ones change nothing)."""
    if state["terminated"] is None and not state["expired"]:
        state["terminated"] = {"id": item.id, "at": item.at.isoformat(), "by": item.by}


def fire(compiled, state: dict, kind: str) -> Output:
    """Emit the term event ``kind`` (from ``next_event``) and move ``state`` on."""
    k, t = state["term"], instants(compiled, state["term"])
    renewal = compiled.agreement.validity.renewal
    data = {"agreement": compiled.id, "revision": compiled.revision, "term": k + 1, "term_end": t["end"].isoformat(),
            "notice": renewal.notice, "renewal_term": renewal.term, "notice_deadline": utc(t["deadline"]),
            "last_notice_day": t["last_day"].isoformat()}
    if kind == OutputType.AGREEMENT_NOTICE_DUE:
        state["notice_sent"] = True
        at, type_ = t["notice_due"], kind
        data["summary"] = (f"{compiled.id}: notice to end term {k + 1} (ends {t['end']}) is due by "
                           f"{t['last_day']}; otherwise it renews for {renewal.term}")
        reason = f"{NOTICE_REMINDER_DAYS} days before the last day to give {renewal.notice} notice"
    else:
        at, type_, reason = _term_end(compiled, state, t, data)
    data["explain"] = {"reason": reason, "clause": "validity.renewal"}
    return output(compiled.source, type_, compiled.id, at, ("term", k, type_), data)


def _term_end(compiled, state: dict, t: dict, data: dict) -> tuple[datetime, OutputType, str]:
    term = state["terminated"]
    if term is not None and datetime.fromisoformat(term["at"]) < t["deadline"]:
        state["expired"] = True
        data.update(terminated_by=term["by"], terminated_at=utc(datetime.fromisoformat(term["at"])),
                    termination=term["id"], summary=f"{compiled.id} expired at the end of {t['end']} "
                                                    f"(terminated by the {term['by']})")
        return t["term_end"], OutputType.AGREEMENT_EXPIRED, f"terminated by the {term['by']} before the notice deadline"
    state["term"] = state["term"] + 1
    nxt = instants(compiled, state["term"])
    new_end = nxt["end"]
    state["notice_sent"] = nxt["notice_due"] <= t["term_end"]  # a reminder already past is not sent
    data.update(new_end=new_end.isoformat(), summary=f"{compiled.id} renewed for {data['renewal_term']}: "
                                                     f"valid until {new_end}")
    reason = "no termination before the notice deadline" if term is None else \
        f"the termination of {utc(datetime.fromisoformat(term['at']))} came after the notice deadline"
    return t["term_end"], OutputType.AGREEMENT_RENEWED, reason


class TermBook:
    """The term state of the agreements one desk owns (``owns(agreement id)``; replay: all).

    The live engine's desk for partition q owns the agreements whose key lands on q, the partition
    ``agreement.terminated`` records (keyed by agreement) reach through the desk topic, so each
    agreement's renewal is decided in exactly one place, at instants every source has passed."""

    def __init__(self, registry, owns=None) -> None:
        self.registry, self.owns = registry, owns
        self.states: dict[str, dict] = {}
        self._next: dict[str, tuple[datetime, str] | None] = {}
        self._renewing: tuple[int, list[str]] | None = None  # (registry generation, ids): asked per advance
        self._earliest: tuple[int, datetime | None] | None = None  # (registry generation, next_at())

    def _ids(self) -> list[str]:
        """The renewing agreements this book owns (recomputed only when the registry changes)."""
        if self._renewing is None or self._renewing[0] != self.registry.generation:
            out = []
            for agreement_id in self.registry.ids():
                validity = self.registry.latest(agreement_id).agreement.validity
                if validity is not None and validity.renewal is not None and (self.owns is None or self.owns(agreement_id)):
                    out.append(agreement_id)
            self._renewing = (self.registry.generation, out)
        return self._renewing[1]

    def _upcoming(self, agreement_id: str) -> tuple[datetime, str] | None:
        if agreement_id not in self._next:
            state = self.states.get(agreement_id) or fresh()
            self._next[agreement_id] = next_event(self.registry.latest(agreement_id), state)
        return self._next[agreement_id]

    def next_at(self) -> datetime | None:
        """The earliest upcoming term event (asked at every advance: kept until ``_next`` or the
        registry changes)."""
        if self._earliest is None or self._earliest[0] != self.registry.generation:
            earliest = min((n[0] for a in self._ids() if (n := self._upcoming(a)) is not None), default=None)
            self._earliest = (self.registry.generation, earliest)
        return self._earliest[1]

    def _forget(self, agreement_id: str) -> None:
        """``agreement_id``'s next event must be worked out again."""
        self._next.pop(agreement_id, None)
        self._earliest = None

    def due(self, passed, to_us) -> tuple[int, str] | None:
        """(instant in µs, agreement) of the earliest term event every source has passed, or None."""
        best = None
        for agreement_id in self._ids():
            n = self._upcoming(agreement_id)
            if n is not None and passed(to_us(n[0]), True) and (best is None or to_us(n[0]) < best[0]):
                best = (to_us(n[0]), agreement_id)
        return best

    def fire(self, agreement_id: str) -> Output:
        state = self.states.setdefault(agreement_id, fresh())
        out = fire(self.registry.latest(agreement_id), state, self._upcoming(agreement_id)[1])
        self._forget(agreement_id)
        return out

    def submit(self, item: Termination) -> None:
        terminate(self.states.setdefault(item.agreement, fresh()), item)
        self._forget(item.agreement)

    def expiry_us(self, agreement_id: str, to_us) -> int | None:
        """``expires_at`` of a renewable agreement this desk owns, in µs; None while it renews."""
        state = self.states.get(agreement_id)
        if state is None or state["terminated"] is None:
            return None
        compiled = self.registry.latest(agreement_id)
        if compiled.agreement.validity is None or compiled.agreement.validity.renewal is None:
            return None  # a later revision without renewal: its written validity governs
        at = expires_at(compiled, state)
        return None if at is None else to_us(at)

    def load(self, agreement_id: str, state: dict | None) -> None:
        if state is not None:
            self.states[agreement_id] = dict(state)
            self._forget(agreement_id)
