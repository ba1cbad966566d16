"""Agreement keys of DESIGN.md §13 "Parties", "Customer obligations", "Term and renewal".

Invariants (DESIGN.md §10, like every model): frozen, unknown keys refused, values bounded.
- ``Scope``: exactly one of ``group`` (an internal team: the ticket is assigned to that group)
  or ``status`` (+ optional ``vendor``: the ticket waits in that status on that vendor).
- ``Obligation``: a clock of the customer's, started and stopped by ticket lifecycle events.
- ``Renewal``: ``term`` in whole calendar months (``12mo``, ``1y``; 1 to 120 months) and
  ``notice`` in whole days (``90d``, 1 to 3650) or months (``3mo``); :func:`term_months` and
  :func:`notice_span` are the one parser of both, for validation and for the core alike.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from escalation.agreement.fields import Frozen, check_positive

SUPPORTING_KINDS = ("OperationalLevelAgreement", "UnderpinningContract")
#: ticket lifecycle words an obligation may start or stop on
OBLIGATION_EVENTS = ("opened", "acknowledged", "updated", "resolved", "reopened", "closed")
MAX_TERM_MONTHS, MAX_NOTICE_DAYS = 120, 3650
Name = Annotated[str, Field(min_length=1, max_length=200)]
_TERM = re.compile(r"^([1-9][0-9]{0,3})(mo|y)$")
_NOTICE = re.compile(r"^([1-9][0-9]{0,4})(d|mo)$")


class Scope(Frozen):
    """When a supporting agreement's clocks run: while the ticket is assigned to ``group``, or
    while its status is ``status`` (and, with ``vendor``, it waits on that vendor)."""

    group: Name | None = None
    status: Name | None = None
    vendor: Name | None = None

    @model_validator(mode="after")
    def _one_form(self) -> "Scope":
        if (self.group is None) == (self.status is None):
            raise ValueError("a scope needs exactly one of: group, status (+ vendor)")
        if self.vendor is not None and self.status is None:
            raise ValueError("vendor applies to a status scope: {status: pending_vendor, vendor: NAME}")
        return self


class Obligation(Frozen):
    """A clock of the customer's: counted in ``calendar`` from ``starts`` until ``stops``; a miss
    gives ``obligation.missed`` and excuses the provider's breaches while it lasts."""

    id: Name
    party: Literal["customer"] = "customer"
    starts: Literal["opened", "acknowledged", "updated", "resolved", "reopened"]
    stops: Literal["acknowledged", "updated", "resolved", "reopened", "closed"]
    within: Annotated[str, AfterValidator(check_positive)]
    calendar: Name

    @model_validator(mode="after")
    def _sane(self) -> "Obligation":
        if self.starts == self.stops:
            raise ValueError(f"an obligation cannot start and stop on the same event ({self.starts!r})")
        return self


def add_months(day: date, months: int) -> date:
    """``day`` + ``months`` calendar months, clamped to the month's last day (Jan 31 + 1 = Feb 28)."""
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


def term_months(text: str) -> int:
    """``12mo`` -> 12, ``1y`` -> 12; ValueError outside 1..120 months or another form."""
    m = _TERM.match(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"term {text!r}: use whole months or years, e.g. 12mo or 1y")
    months = int(m[1]) * (12 if m[2] == "y" else 1)
    if months > MAX_TERM_MONTHS:
        raise ValueError(f"term {text!r} is longer than {MAX_TERM_MONTHS // 12} years")
    return months


def notice_span(text: str) -> tuple[int, str]:
    """``90d`` -> (90, "d"), ``3mo`` -> (3, "mo"); ValueError beyond 10 years or another form."""
    m = _NOTICE.match(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"notice {text!r}: use whole days or months, e.g. 90d or 3mo")
    count, unit = int(m[1]), m[2]
    if (count if unit == "d" else count * 31) > MAX_NOTICE_DAYS:
        raise ValueError(f"notice {text!r} is longer than 10 years")
    return count, unit


def _check_term(text: str) -> str:
    term_months(text)
    return text


def _check_notice(text: str) -> str:
    notice_span(text)
    return text


class Renewal(Frozen):
    """Automatic renewal by ``term`` unless terminated with ``notice`` before the term ends."""

    term: Annotated[str, AfterValidator(_check_term)]
    notice: Annotated[str, AfterValidator(_check_notice)]


def check_parties(a) -> list[tuple[tuple, str]]:
    """Cross-references of the §13 party keys (``references.check_references`` runs it)."""
    problems = []
    first: dict[str, int] = {}
    for i, o in enumerate(a.obligations):
        if a.kind != "Agreement":
            problems.append((("obligations", i), f"obligations are the customer's: a {a.kind} has none"))
        if o.calendar not in a.calendars:
            known = ", ".join(sorted(a.calendars)) or "none defined"
            problems.append((("obligations", i, "calendar"), f"unknown calendar {o.calendar!r} (known: {known})"))
        if o.id in first:
            problems.append((("obligations", i, "id"), f"duplicate obligation id {o.id!r} (first at obligations[{first[o.id]}])"))
        first.setdefault(o.id, i)
    problems += _renewal(a)
    for i, agreement_id in enumerate(a.supports):
        if a.kind == "Agreement":
            problems.append((("supports", i), "supports is for OperationalLevelAgreement and UnderpinningContract"))
        elif agreement_id == a.id:
            problems.append((("supports", i), "an agreement cannot support itself"))
    return problems


def _renewal(a) -> list[tuple[tuple, str]]:
    """The first notice deadline must fall after the validity starts (else no notice is possible)."""
    v = a.validity
    if v is None or v.renewal is None or v.end is None:
        return []
    count, unit = notice_span(v.renewal.notice)
    after = v.end + timedelta(days=1)
    deadline = after - timedelta(days=count) if unit == "d" else add_months(after, -count)
    if deadline <= v.start:
        return [(("validity", "renewal", "notice"), f"notice {v.renewal.notice} before the end {v.end} falls on or "
                 f"before the validity start {v.start}: no notice could ever be given")]
    return []
