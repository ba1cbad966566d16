"""Contract terms of DESIGN.md §13, targets half: prime/non-prime levels (``opened_in``) and
maintenance windows on clocks, with hand-computed instants, and their validation (file:line).

Agreement: examples/agreements/acme-erp-contract.yaml (Europe/Berlin, UTC+1 in March 2026;
prime = Mon-Fri 07:00-19:00, non_prime its complement; P2 response 1h prime / 4h non-prime,
P2 resolution 8h prime / 16h non-prime, all on the 24x7 calendar; the saturday-upgrade window,
Sat 22:00-Sun 02:00 local, pauses the resolution clock of s4-prod tickets). 2026-03-02 is a Monday.
"""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from escalation.agreement.models import Agreement
from escalation.core.contract.registry import Registry
from escalation.loader import AgreementError, parse_agreement
from escalation.paths import EXAMPLES
from tests.helpers import Events, run

CONTRACT = EXAMPLES / "agreements" / "acme-erp-contract.yaml"
TEXT = CONTRACT.read_text()


def _registry(text: str = TEXT) -> Registry:
    return Registry([Agreement.model_validate(YAML(typ="safe").load(text))])


def _open(time: str, priority: str = "P2", service: str = "s4-prod", ticket: str = "T-1") -> Events:
    return Events().open(time, priority, ticket, agreement="acme-erp-contract", service=service)


def _breaches(outputs: list[dict], clock: str) -> list[tuple]:
    return [(o["time"], o["data"]["explain"]["clause"], o["data"]["explain"].get("opened_in"))
            for o in outputs if o["type"] == "sla.breached" and o["data"]["clock"] == clock]


@pytest.mark.parametrize("opened, breach, clause, level", [
    # Monday 06:59 local is before prime opens: the non-prime 4h level, due 10:59 local
    ("2026-03-02T06:59:00+01:00", "2026-03-02T09:59:00+00:00", "targets[3]", "non_prime"),
    # Monday 07:00 exactly: prime is open (half-open [07:00, 19:00)): 1h, due 08:00 local
    ("2026-03-02T07:00:00+01:00", "2026-03-02T07:00:00+00:00", "targets[2]", "prime"),
    # Monday 18:59: still prime, the 1h level runs past prime's close (the choice is kept)
    ("2026-03-02T18:59:00+01:00", "2026-03-02T18:59:00+00:00", "targets[2]", "prime"),
    # Monday 19:00: non-prime, 4h, due 23:00 local
    ("2026-03-02T19:00:00+01:00", "2026-03-02T22:00:00+00:00", "targets[3]", "non_prime"),
    # Saturday noon: non-prime all weekend, 4h
    ("2026-03-07T12:00:00+01:00", "2026-03-07T15:00:00+00:00", "targets[3]", "non_prime"),
])
def test_the_response_level_is_chosen_by_the_opening_instant(opened, breach, clause, level):
    outputs, rejects, _ = run(_open(opened), until="2026-03-09T00:00:00+00:00", reg=_registry())
    assert rejects == []
    assert _breaches(outputs, "response") == [(breach, clause, level)]


@pytest.mark.parametrize("opened, changed, breach, clause", [
    # opened P3 Monday 20:00 (non-prime), P2 from Tuesday 08:00: chosen again by the OPENING
    # instant -> the non-prime 4h level; P3 counted nothing on the business calendar overnight
    # (keep_elapsed: 0), so 4h from 08:00 local = 12:00 local
    ("2026-03-02T20:00:00+01:00", "2026-03-03T08:00:00+01:00", "2026-03-03T11:00:00+00:00", "targets[3]"),
    # opened P3 Tuesday 10:00 (prime), P2 at 12:00: P3 counted 2h of business time, past the
    # prime 1h level -> breached at the change instant, once
    ("2026-03-03T10:00:00+01:00", "2026-03-03T12:00:00+01:00", "2026-03-03T11:00:00+00:00", "targets[2]"),
])
def test_a_priority_change_chooses_again_by_the_opening_instant(opened, changed, breach, clause):
    events = _open(opened, "P3").add("priority_changed", changed, "T-1", priority="P2")
    outputs, rejects, _ = run(events, until="2026-03-04T00:00:00+00:00", reg=_registry())
    assert rejects == []
    assert [b[:2] for b in _breaches(outputs, "response")] == [(breach, clause)]


@pytest.mark.parametrize("opened, service, breach, not_counted", [
    # s4-prod, opened Saturday 20:00 (non-prime 16h): the window 22:00-02:00 pauses the clock,
    # so the 16h fall at Sunday 16:00 local instead of 12:00
    ("2026-03-07T20:00:00+01:00", "s4-prod", "2026-03-08T15:00:00+00:00", "PT4H"),
    # s4-test is not a service of the window: 16h of wall time, Sunday 12:00 local
    ("2026-03-07T20:00:00+01:00", "s4-test", "2026-03-08T11:00:00+00:00", None),
    # s4-prod opened inside the window (23:00): counting starts at 02:00, 16h -> 18:00 local
    ("2026-03-07T23:00:00+01:00", "s4-prod", "2026-03-08T17:00:00+00:00", "PT3H"),
    # s4-prod opened Monday 10:00 (prime 8h): no window in the way, 18:00 local
    ("2026-03-02T10:00:00+01:00", "s4-prod", "2026-03-02T17:00:00+00:00", "PT0S"),
])
def test_a_maintenance_window_pauses_the_listed_clock_of_its_services(opened, service, breach, not_counted):
    outputs, rejects, _ = run(_open(opened, service=service), until="2026-03-09T00:00:00+00:00", reg=_registry())
    assert rejects == []
    (res,) = [o for o in outputs if o["type"] == "sla.breached" and o["data"]["clock"] == "resolution"]
    assert res["time"] == breach
    maintenance = res["data"]["explain"].get("maintenance")
    assert (maintenance or {}).get("not_counted") == not_counted
    # the response clock is not listed in excluded_from: it never pauses
    (resp,) = [o for o in outputs if o["type"] == "sla.breached" and o["data"]["clock"] == "response"]
    assert "maintenance" not in resp["data"]["explain"]


def _problems(text: str) -> list[str]:
    with pytest.raises(AgreementError) as err:
        parse_agreement(text.encode(), "c.yaml")
    return [str(p) for p in err.value.problems]


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


RESPONSE_NON_PRIME = "  - {clock: response,   priority: P2, within: 4h,  calendar: always, opened_in: non_prime}"


@pytest.mark.parametrize("old, new, message", [
    # the non-prime response level removed: tickets opened outside prime have no target
    (RESPONSE_NON_PRIME + "\n", "", "targets[2].opened_in: targets of clock 'response' priority 'P2': no target "
     "applies to a ticket opened at 2026-01-01T00:00:00+01:00 (opened_in calendars leave a gap)"),
    # the non-prime level on the 24x7 calendar overlaps prime (first overlap: Thursday 1 January
    # 07:00; prime has no holidays in this agreement)
    (RESPONSE_NON_PRIME, RESPONSE_NON_PRIME.replace("opened_in: non_prime", "opened_in: always"),
     "targets[2].opened_in: targets of clock 'response' priority 'P2': targets[3] (opened_in always) and "
     "targets[2] (opened_in prime) both apply to a ticket opened at 2026-01-01T07:00:00+01:00"),
    # a calendar that does not exist
    (RESPONSE_NON_PRIME, RESPONSE_NON_PRIME.replace("opened_in: non_prime", "opened_in: nonprime"),
     "targets[3].opened_in: unknown calendar 'nonprime' (known: always, business, non_prime, prime)"),
    # a plain target beside opened_in levels of the same clock and priority
    (RESPONSE_NON_PRIME, RESPONSE_NON_PRIME.replace(", opened_in: non_prime", ""),
     "targets[2].opened_in: targets[3] applies to every P2 response ticket: with opened_in levels, every target of "
     "that clock and priority needs opened_in"),
])
def test_opened_in_levels_must_cover_the_week_without_overlap(old, new, message):
    text = TEXT.replace(old, new)
    problems = _problems(text)
    line = _line(text, "opened_in: prime}") if "targets[2]" in message.split(":")[0] else _line(text, new.strip()[:60])
    assert problems == [f"c.yaml:{line}: {message}"]


def test_holidays_of_an_opened_in_calendar_count():
    # prime with Berlin holidays and a non-prime level on plain weekday evenings/weekends: New
    # Year's Day (a Thursday) is closed in prime and covered by neither level
    text = TEXT.replace('prime: {hours: {mon-fri: "07:00-19:00"}}',
                        'prime: {hours: {mon-fri: "07:00-19:00"}, holidays: {country: DE, subdivision: BE}}\n'
                        '  evenings: {hours: {mon-fri: ["00:00-07:00", "19:00-24:00"], sat-sun: "00:00-24:00"}}')
    text = text.replace("opened_in: non_prime", "opened_in: evenings")
    (problem,) = {p.split(": ", 2)[2].split(": ", 1)[1] for p in _problems(text)}
    assert problem == "no target applies to a ticket opened at 2026-01-01T07:00:00+01:00 (opened_in calendars leave a gap)"


@pytest.mark.parametrize("old, new, path, message", [
    ("excluded_from: [resolution]", "excluded_from: [resolutoin]", "maintenance_windows[0].excluded_from",
     "unknown slo or clock 'resolutoin' (known: resolution, response)"),
    ("services: [s4-prod]", "services: [s4-dev]", "maintenance_windows[0].services",
     "unknown service 's4-dev' (known: s4-prod, s4-test)"),
    # a daily window covering the whole day leaves the paused clock no counted time at all
    ('rrule: "FREQ=WEEKLY;BYDAY=SA;BYHOUR=22", duration: 4h', 'rrule: "FREQ=DAILY;BYHOUR=0", duration: 25h',
     "maintenance_windows[0].excluded_from", "clock 'resolution' never reaches its targets[1] target: the windows "
     "pausing it cover all the counted time of calendar 'always'"),
])
def test_maintenance_on_clocks_validation(old, new, path, message):
    text = TEXT.replace(old, new)
    problems = _problems(text)
    assert len(problems) == 1 and problems[0].split(": ", 1)[1] == f"{path}: {message}"
