"""Term and renewal (DESIGN.md §13) with hand-computed instants, the ``agreement.terminated``
decoder and validation errors (file:line) for the §13 keys.

Agreement ``cust`` (Europe/Berlin: UTC+1 in winter, UTC+2 in summer) valid 2026-01-01 to
2026-12-31 with ``renewal: {term: 12mo, notice: 90d}``: the term is over at 2027-01-01 00:00
Berlin (2026-12-31T23:00Z); the notice deadline is 90 days earlier, 2026-10-03 00:00 Berlin
(2026-10-02T22:00Z), so the last day to give notice is 2026-10-02; notice_due is 30 days before
that day: 2026-09-02 00:00 Berlin (2026-09-01T22:00Z).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from escalation.agreement.models import Agreement
from escalation.core.contract.registry import Registry
from escalation.core.events import Rejected, decode_event
from escalation.loader import AgreementError, parse_agreement
from tests.helpers import run

BASE = """apiVersion: escalation/v1
kind: Agreement
id: cust
revision: 1
timezone: Europe/Berlin
validity: {start: 2026-01-01, end: 2026-12-31, renewal: {term: 12mo, notice: 90d}}
priorities: [P1]
clocks: {response: {starts: opened, stops: acknowledged}}
"""


def _reg(text: str = BASE) -> Registry:
    return Registry([parse_agreement(text, "cust.yaml")])


def _terminate(time: str, by: str = "customer", id_: str = "t-1") -> str:
    return f'{{"id": "{id_}", "type": "agreement.terminated", "time": "{time}", "agreement": "cust", "by": "{by}"}}'


def _term_rows(outputs) -> list[tuple]:
    return [(o["time"], o["type"], o["data"].get("new_end") or o["data"].get("terminated_by") or o["data"]["last_notice_day"])
            for o in outputs if o["type"].startswith("agreement.")]


TERMS = [
    # no termination: notice_due 2026-09-02 (Berlin), renewed at the end of 2026-12-31 until 2027-12-31
    ([], "2027-01-02T00:00:00Z",
     [("2026-09-01T22:00:00+00:00", "agreement.notice_due", "2026-10-02"),
      ("2026-12-31T23:00:00+00:00", "agreement.renewed", "2027-12-31")]),
    # terminated on the last notice day (2026-10-02 23:59 Berlin, before the deadline): expires at the end
    ([_terminate("2026-10-02T23:59:00+02:00")], "2027-06-01T00:00:00Z",
     [("2026-09-01T22:00:00+00:00", "agreement.notice_due", "2026-10-02"),
      ("2026-12-31T23:00:00+00:00", "agreement.expired", "customer")]),
    # terminated early (in March, by the provider): no notice reminder, expired at the end
    ([_terminate("2026-03-01T10:00:00Z", "provider")], "2027-06-01T00:00:00Z",
     [("2026-12-31T23:00:00+00:00", "agreement.expired", "provider")]),
    # terminated exactly at the deadline instant (2026-10-03 00:00 Berlin): too late, it renews, and
    # the termination ends the next term: notice_due 2027-09-02 is skipped, expired at the end of 2027
    ([_terminate("2026-10-02T22:00:00Z")], "2028-06-01T00:00:00Z",
     [("2026-09-01T22:00:00+00:00", "agreement.notice_due", "2026-10-02"),
      ("2026-12-31T23:00:00+00:00", "agreement.renewed", "2027-12-31"),
      ("2027-12-31T23:00:00+00:00", "agreement.expired", "customer")]),
    # a second termination (other id) changes nothing: the first one counts
    ([_terminate("2026-03-01T10:00:00Z", "provider"), _terminate("2026-04-01T10:00:00Z", "customer", "t-2")],
     "2027-06-01T00:00:00Z", [("2026-12-31T23:00:00+00:00", "agreement.expired", "provider")]),
]


@pytest.mark.parametrize("lines, until, expected", TERMS)
def test_notice_renewal_and_expiry_instants(lines, until, expected):
    outputs, rejects, _ = run(lines, until=until, reg=_reg())
    assert rejects == []
    assert _term_rows(outputs) == expected


def test_notice_in_months_and_a_month_end_term():
    # end 2026-02-28, term 1mo, notice 1mo: the term is over at 2026-03-01 00:00 Berlin
    # (2026-02-28T23:00Z); deadline 2026-02-01, last notice day 2026-01-31, notice_due 2026-01-01;
    # renewed until 2026-03-31 (the day before 2026-04-01)
    text = BASE.replace("end: 2026-12-31, renewal: {term: 12mo, notice: 90d}", "end: 2026-02-28, renewal: {term: 1mo, notice: 1mo}")
    outputs, _, _ = run([], until="2026-03-01T00:00:00Z", reg=_reg(text))
    assert _term_rows(outputs) == [("2025-12-31T23:00:00+00:00", "agreement.notice_due", "2026-01-31"),
                                   ("2026-02-28T23:00:00+00:00", "agreement.renewed", "2026-03-31")]


def test_terminating_an_agreement_without_renewal_or_unknown_is_rejected():
    text = BASE.replace(", renewal: {term: 12mo, notice: 90d}", "")
    _, rejects, _ = run([_terminate("2026-03-01T10:00:00Z"), _terminate("2026-03-01T10:00:00Z", id_="x").replace('"cust"', '"nope"')],
                        reg=_reg(text))
    assert "has no validity.renewal" in rejects[0]["reason"]
    assert "unknown agreement 'nope'" in rejects[1]["reason"]


@pytest.mark.parametrize("record, reason", [
    # by is one of customer, provider
    ({"by": "vendor"}, "field 'by'"),
    # strict: a number is not a name
    ({"agreement": 7}, "field 'agreement'"),
    # plausible time window (DESIGN.md §10)
    ({"time": "2300-01-01T00:00:00Z"}, "outside the plausible range"),
    # numbers are not timestamps
    ({"time": 1700000000}, "not an RFC 3339 timestamp"),
    # naive times are rejected
    ({"time": "2026-03-01T10:00:00"}, "naive timestamp"),
    # the agreement is required
    ({"agreement": None}, "field 'agreement'"),
])
def test_agreement_terminated_decoder_is_strict(record, reason):
    base = {"id": "t-1", "type": "agreement.terminated", "time": "2026-03-01T10:00:00Z", "agreement": "cust", "by": "customer"}
    base.update(record)
    with pytest.raises(Rejected) as err:
        decode_event(base)
    assert reason in err.value.reason


def test_status_change_carries_an_optional_vendor():
    event = decode_event({"id": "s", "type": "ticket.status_changed", "time": "2026-03-01T10:00:00Z", "ticket": "T",
                          "status": "pending_vendor", "vendor": "telco"})
    assert event.vendor == "telco"
    with pytest.raises(Rejected):
        decode_event({"id": "s", "type": "ticket.status_changed", "time": "2026-03-01T10:00:00Z", "ticket": "T",
                      "status": "pending_vendor", "vendor": 5})


OLA = BASE.replace("kind: Agreement", "kind: OperationalLevelAgreement").replace(
    "validity: {start: 2026-01-01, end: 2026-12-31, renewal: {term: 12mo, notice: 90d}}\n", "")


@pytest.mark.parametrize("text, line, path, message", [
    # renewal: a term in business days, zero, or beyond 10 years
    (BASE.replace("term: 12mo", "term: 5bd"), 6, "validity.renewal.term", "whole months or years"),
    (BASE.replace("term: 12mo", "term: 0mo"), 6, "validity.renewal.term", "whole months or years"),
    (BASE.replace("term: 12mo", "term: 11y"), 6, "validity.renewal.term", "longer than 10 years"),
    # notice: negative, hostile text, too long, or before the validity starts
    (BASE.replace("notice: 90d", "notice: -90d"), 6, "validity.renewal.notice", "whole days or months"),
    (BASE.replace("notice: 90d", "notice: 99999d"), 6, "validity.renewal.notice", "longer than 10 years"),
    (BASE.replace("notice: 90d", "notice: 400d"), 6, "validity.renewal.notice", "before the validity start"),
    # renewal without an end; unknown renewal key
    (BASE.replace("end: 2026-12-31, ", ""), 6, "validity", "renewal needs an end"),
    (BASE.replace("notice: 90d", "notice: 90d, auto: true"), 6, "validity.renewal.auto", "Extra inputs"),
    # kinds and scopes
    (OLA, 1, "", "has no scope"),
    (OLA + "scope: {group: network, status: pending_vendor}\n", 8, "scope", "exactly one of"),
    (OLA + "scope: {vendor: telco}\n", 8, "scope", "exactly one of"),
    (OLA + "scope: {group: ''}\n", 8, "scope.group", "at least 1 character"),
    (BASE + "scope: {group: network}\n", 1, "", "takes no scope"),
    (OLA + "scope: {group: network}\nsupports: [cust]\n", 9, "supports[0]", "cannot support itself"),
    (BASE + "supports: [other]\n", 9, "supports[0]", "supports is for"),
    (BASE.replace("  provider", "x") + "parties: {provider: {id: p}, customer: {id: c}, supporting: [{name: x}]}\n",
     9, "parties.supporting[0].id", "Field required"),
    # obligations: unknown calendar, zero or business-less duration, same start and stop, party, kind
    (BASE + "obligations: [{id: o, starts: resolved, stops: closed, within: 1bd, calendar: nope}]\n", 9,
     "obligations[0].calendar", "unknown calendar 'nope'"),
    (BASE + "obligations: [{id: o, starts: resolved, stops: closed, within: 0m, calendar: always}]\n", 9,
     "obligations[0].within", "longer than zero"),
    (BASE + "obligations: [{id: o, starts: resolved, stops: resolved, within: 1h, calendar: always}]\n", 9,
     "obligations[0]", "same event"),
    (BASE + "obligations: [{id: o, party: provider, starts: resolved, stops: closed, within: 1h, calendar: always}]\n", 9,
     "obligations[0].party", "'customer'"),
    (BASE + "obligations: [{id: o, starts: banana, stops: closed, within: 1h, calendar: always}]\n", 9,
     "obligations[0].starts", "'opened'"),
    (OLA + "scope: {group: network}\nobligations: [{id: o, starts: resolved, stops: closed, within: 1h, calendar: always}]\n",
     9, "obligations[0]", "obligations are the customer's"),
])
def test_validation_errors_name_file_line_and_path(text, line, path, message):
    with pytest.raises(AgreementError) as err:
        parse_agreement(text, "cust.yaml")
    problems = [(p.line, p.path) for p in err.value.problems]
    text_of = "\n".join(str(p) for p in err.value.problems)
    assert (line, path) in problems, text_of
    assert message in text_of


def test_bundled_contracts_example_validates():
    from escalation.loader import load_agreements
    from escalation.paths import EXAMPLE_AGREEMENT

    agreements = load_agreements([EXAMPLE_AGREEMENT.parent / "contracts"])
    assert sorted((a.kind, a.id) for a in agreements) == [
        ("Agreement", "initech-it"), ("OperationalLevelAgreement", "network-ola"), ("UnderpinningContract", "telco-uc")]
    assert all(isinstance(a, Agreement) for a in agreements)


# -- renewal extends openings; expiry stops the desk's money and reports ------------------------
#
# MONEY (Europe/Berlin) renews like BASE: term 0 is over at 2026-12-31T23:00Z; a termination
# before the deadline (2026-10-02T22:00Z) expires it there. A P1 ticket breaches 4h after opening
# (100.00 each); reports are monthly and start with the first activity.

MONEY = BASE.replace("clocks: {response: {starts: opened, stops: acknowledged}}\n", """currency: EUR
fees: {monthly: "1000.00"}
calendars: {always: {kind: 24x7}}
services: {svc: {name: S}}
clocks: {resolution: {starts: opened, stops: resolved}}
targets:
  - {clock: resolution, priority: P1, within: 4h, calendar: always}
remedies:
  - {id: pen, kind: per_breach, clock: resolution, amount: "100.00"}
notification_targets: {owner: {kind: email, address: o@x.example}}
reporting: {period: calendar_month, deliver_to: [owner]}
""")
NO_RENEWAL = MONEY.replace(", renewal: {term: 12mo, notice: 90d}", "")


def _open(ticket: str, time: str) -> str:
    return (f'{{"id": "o-{ticket}", "type": "ticket.opened", "time": "{time}", "ticket": "{ticket}", '
            f'"agreement": "cust", "service": "svc", "priority": "P1"}}')


def _revisions(*texts: str) -> Registry:
    return Registry([parse_agreement(t, "cust.yaml") for t in texts])


def _rev2(text: str) -> str:
    return text.replace("revision: 1", "revision: 2")


OPENINGS = [
    # the last written day, 2026-12-31 23:30 Berlin: valid with or without renewal
    ([MONEY], "2026-12-31T22:30:00Z", 1),
    ([NO_RENEWAL], "2026-12-31T22:30:00Z", 1),
    # 2027-01-01 00:30 Berlin (2026-12-31T23:30Z): renewed term 1; without renewal no revision
    ([MONEY], "2026-12-31T23:30:00Z", 1),
    ([NO_RENEWAL], "2026-12-31T23:30:00Z", "no revision valid"),
    # 2029-03-10: term 3, still whole renewed terms
    ([MONEY], "2029-03-10T10:00:00Z", 1),
    # 2025-12-31 23:59 Berlin (2025-12-31T22:59Z): before the start, renewal or not
    ([MONEY], "2025-12-31T22:59:00Z", "no revision valid"),
    # the highest revision governs the term: revision 2 without renewal ends openings at its end
    # (revision 1's renewal no longer extends it) ...
    ([MONEY, _rev2(NO_RENEWAL)], "2027-03-10T10:00:00Z", "no revision valid"),
    ([MONEY, _rev2(NO_RENEWAL)], "2026-06-10T10:00:00Z", 2),
    # ... and a renewing revision 2 takes the renewed days, not revision 1
    ([NO_RENEWAL, _rev2(MONEY)], "2027-03-10T10:00:00Z", 2),
]


@pytest.mark.parametrize("texts, opened, expected", OPENINGS)
def test_renewal_extends_the_days_an_agreement_accepts_openings(texts, opened, expected):
    until = (datetime.fromisoformat(opened) + timedelta(hours=5)).isoformat()  # past the 4h breach
    outputs, rejects, _ = run([_open("T", opened)], until=until, reg=_revisions(*texts))
    if isinstance(expected, str):
        assert len(rejects) == 1 and expected in rejects[0]["reason"]
    else:
        assert rejects == []
        breaches = [o["source"] for o in outputs if o["type"] == "sla.breached" and o["subject"] == "T"]
        assert breaches == [f"escalation/cust@{expected}"]


def _money_rows(outputs) -> list[tuple]:
    return [(o["time"], o["type"], o["subject"], o["data"].get("period"))
            for o in outputs if o["type"] in ("penalty.assessed", "report.published", "agreement.expired")]


# B breaches 2026-12-31T22:00Z (before the term end), A at 2027-01-01T00:00Z (an hour after it),
# C (opened 2027-02-10T10:00Z, in the renewed days) at 14:00Z
TICKETS = [_open("B", "2026-12-31T18:00:00Z"), _open("A", "2026-12-31T20:00:00Z"), _open("C", "2027-02-10T10:00:00Z")]
#: renewed (no termination, or one after the notice deadline): A's penalty falls in 2027-01, C's in
#: 2027-02, reports through 2027-03
RENEWED = [("2026-12-31T22:00:00+00:00", "penalty.assessed", "B", "2026-12"),
           ("2026-12-31T23:00:00+00:00", "report.published", "cust", "2026-12"),
           ("2027-01-01T00:00:00+00:00", "penalty.assessed", "A", "2027-01"),
           ("2027-01-31T23:00:00+00:00", "report.published", "cust", "2027-01"),
           ("2027-02-10T14:00:00+00:00", "penalty.assessed", "C", "2027-02"),
           ("2027-02-28T23:00:00+00:00", "report.published", "cust", "2027-02"),
           ("2027-03-31T22:00:00+00:00", "report.published", "cust", "2027-03")]
EXPIRY = [
    # terminated in March: expired 2026-12-31T23:00Z; B's penalty and the 2026-12 report (published
    # at its end, before agreement.expired of the same instant) stay; A's breach at 2027-01-01T00:00Z
    # and C's are after the expiry: no penalty; no report for 2027-01..03. C is still accepted
    # (the ticket side cannot see the termination).
    (MONEY, [_terminate("2026-03-01T10:00:00Z")],
     [("2026-12-31T22:00:00+00:00", "penalty.assessed", "B", "2026-12"),
      ("2026-12-31T23:00:00+00:00", "report.published", "cust", "2026-12"),
      ("2026-12-31T23:00:00+00:00", "agreement.expired", "cust", None)]),
    # no termination: renewed; A's penalty falls in 2027-01, C's in 2027-02, reports through 2027-03
    (MONEY, [],
     RENEWED),
    # terminated after the deadline (2026-10-05): renewed, so everything of the no-termination
    # case stands (it expires at the end of 2027)
    (MONEY, [_terminate("2026-10-05T10:00:00Z")],
     RENEWED),
    # a mid-month end (2026-12-15, notice 30d; deadline 2026-11-16 00:00 Berlin), terminated in
    # March: expired at 2026-12-16 00:00 Berlin (2026-12-15T23:00Z). B and A breach after that:
    # no penalty although their period 2026-12 contains the last day; that period's report is
    # still published at its end (2026-12-31T23:00Z)
    (MONEY.replace("end: 2026-12-31", "end: 2026-12-15").replace("notice: 90d", "notice: 30d"),
     [_terminate("2026-03-01T10:00:00Z")],
     [("2026-12-15T23:00:00+00:00", "agreement.expired", "cust", None),
      ("2026-12-31T23:00:00+00:00", "report.published", "cust", "2026-12")]),
]


@pytest.mark.parametrize("text, terminations, expected", EXPIRY)
def test_expiry_stops_penalties_credits_and_reports_after_the_final_term(text, terminations, expected):
    outputs, rejects, _ = run(terminations + TICKETS, until="2027-04-01T00:00:00Z", reg=_reg(text))
    assert rejects == []
    assert _money_rows(outputs) == expected
    assert any(o["type"] == "sla.breached" and o["subject"] == "C" for o in outputs)


@pytest.mark.parametrize("terminated_at, expected", [
    # no termination: it renews, no expiry
    (None, None),
    # before the deadline 2026-10-02T22:00Z: the end of term 0, 2026-12-31T23:00Z
    ("2026-10-02T21:59:00+00:00", "2026-12-31T23:00:00+00:00"),
    # at the deadline: too late for term 0, ends term 1 (2027-12-31T23:00Z)
    ("2026-10-02T22:00:00+00:00", "2027-12-31T23:00:00+00:00"),
    # in the summer of 2027 (term 1's deadline is 2027-10-02T22:00Z): still term 1
    ("2027-07-01T00:00:00+00:00", "2027-12-31T23:00:00+00:00"),
])
def test_expires_at_names_the_final_term_end(terminated_at, expected):
    from escalation.core.contract.term import expires_at, fresh

    state = fresh()
    if terminated_at is not None:
        state["terminated"] = {"id": "t-1", "at": terminated_at, "by": "customer"}
    at = expires_at(_reg().latest("cust"), state)
    assert (None if at is None else at.astimezone(timezone.utc).isoformat()) == expected
