"""Deterministic synthetic ticket workload for replay benchmarks (DESIGN.md §3 ticket events).

    python bench/generate_tickets.py [--tickets 100000] [--seed 42] [--out bench/out/tickets-100000-s42.jsonl]
                                     [--month 2026-03]

Writes, next to the events file:
- ``agreements/``: three agreement variants derived from ``examples/agreements/acme-erp.yaml``
  - ``acme-erp``   the reference as is (keep_elapsed, resume; 24x7 P1/P2, business P3/P4);
  - ``globex-crm`` other id/customer/services, ``on_priority_change: recompute_from_start``,
    ``on_reopen: new_cycle``;
  - ``initech-hr`` business-hours heavy: every target on a 09:00-17:00 (or prime) calendar in
    America/New_York with US/NY holidays, ``on_priority_change: restart``;
- ``<events>.meta.json``: counts per event type, per agreement and priority, first/last time.

The events file is JSONL, one ticket event per line, globally in time order (ties keep a fixed
order). Everything derives from ``--seed``: the same arguments give the same bytes.

Workload shape (per ticket): opened during the month (weekday business hours weighted x4);
priority P1 2 %, P2 10 %, P3 48 %, P4 40 %; assigned (92 %, 8 % of those reassigned);
acknowledged (~87 % within the response target counted in the target's own calendar, the rest
late); public updates (P1 every 10-35 min, others a few; 20 % of updates are internal, i.e.
``public: false``); pauses (pending_customer ~18 %, pending_vendor ~5 %, then back to
in_progress); priority changes ~5 % (one step up or down); resolved (~88 % within target, pauses
extend the wall time); reopened ~3 % (then resolved again); closed 1-3 days after resolution;
~1.5 % cancelled early instead. About 10 % of openings name only ``customer`` + ``service``.
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
import time as _time
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from escalation.core.contract.registry import Registry  # noqa: E402
from escalation.loader import load_agreements  # noqa: E402
from escalation.paths import EXAMPLE_AGREEMENT  # noqa: E402

UTC = timezone.utc
PRIORITIES = ("P1", "P2", "P3", "P4")
PRIORITY_WEIGHTS = (2, 10, 48, 40)
# Nominal response/resolution when a priority has no target for a clock (e.g. P4 response).
FALLBACK = {"response": timedelta(hours=8), "resolution": timedelta(hours=40)}
SUMMARIES = ("login fails", "report export slow", "batch job aborted", "printer queue stuck",
             "password reset", "interface timeout", "data mismatch in invoice", "new user request",
             "licence expired", "slow search", "error 500 on save", "VPN drops")


# --- agreements ---------------------------------------------------------------------------------

def _reference() -> dict:
    return YAML(typ="safe").load(EXAMPLE_AGREEMENT.read_text())


def globex() -> dict:
    a = _reference()
    a.update(id="globex-crm", revision=1, title="CRM managed service for Globex")
    a["parties"]["customer"] = {"id": "globex", "name": "Globex Inc"}
    a["services"] = {"crm-prod": {"name": "CRM production"}, "crm-test": {"name": "CRM test"}}
    a["on_priority_change"] = "recompute_from_start"
    a["on_reopen"] = "new_cycle"
    a["notification_targets"]["customer-contact"] = {"kind": "email", "address": "it@globex.example"}
    a["slos"][0].update(id="crm-availability", service="crm-prod")
    a["maintenance_windows"][0]["excluded_from"] = ["crm-availability"]
    a["remedies"][0]["slo"] = "crm-availability"
    for t in a["targets"]:
        if (t["clock"], t["priority"]) == ("response", "P2"):
            t["within"] = "30m"
    return a


def initech() -> dict:
    a = _reference()
    a.update(id="initech-hr", revision=2, title="HR platform, business hours support", timezone="America/New_York",
             currency="USD", fees={"monthly": "25000.00"}, on_priority_change="restart", on_reopen="resume")
    a["parties"]["customer"] = {"id": "initech", "name": "Initech"}
    a["services"] = {"hr-prod": {"name": "HR production"}, "hr-test": {"name": "HR test"}}
    a["calendars"]["business"] = {"hours": {"mon-fri": "09:00-17:00"},
                                  "holidays": {"country": "US", "subdivision": "NY", "dates": [date(2026, 12, 24)]}}
    a["targets"] = [
        {"clock": "response", "priority": "P1", "within": "30m", "calendar": "prime", "warn_at": [0.5, 0.8]},
        {"clock": "resolution", "priority": "P1", "within": "8h", "calendar": "prime", "warn_at": [0.75]},
        {"clock": "update", "priority": "P1", "within": "2h", "calendar": "business"},
        {"clock": "response", "priority": "P2", "within": "2h", "calendar": "business", "warn_at": [0.8]},
        {"clock": "resolution", "priority": "P2", "within": "16h", "calendar": "business", "warn_at": [0.75]},
        {"clock": "response", "priority": "P3", "within": "8h", "calendar": "business"},
        {"clock": "resolution", "priority": "P3", "within": "3bd", "calendar": "business", "warn_at": [0.5, 0.9]},
        {"clock": "resolution", "priority": "P4", "within": "10bd", "calendar": "business"},
    ]
    a["notification_targets"]["customer-contact"] = {"kind": "email", "address": "helpdesk@initech.example"}
    a["slos"][0].update(id="hr-availability", service="hr-prod")
    a["maintenance_windows"][0]["excluded_from"] = ["hr-availability"]
    a["remedies"][0]["slo"] = "hr-availability"
    return a


# id -> (share of tickets, customer, services, zone events are stamped in)
AGREEMENTS = {
    "acme-erp": (0.45, "acme", ("erp-prod", "erp-test"), "Europe/Berlin"),
    "globex-crm": (0.30, "globex", ("crm-prod", "crm-test"), "Europe/Berlin"),
    "initech-hr": (0.25, "initech", ("hr-prod", "hr-test"), "America/New_York"),
}


def write_agreements(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    ref_text = EXAMPLE_AGREEMENT.read_text()
    (directory / "acme-erp.yaml").write_text(ref_text)
    yaml = YAML(typ="safe")
    yaml.default_flow_style = None
    yaml.sort_base_mapping_type_on_output = False  # keep the reference key order (clock order)
    for name, build in (("globex-crm", globex), ("initech-hr", initech)):
        with (directory / f"{name}.yaml").open("w") as fh:
            yaml.dump(build(), fh)
    return directory


# --- tickets ------------------------------------------------------------------------------------

class Workload:
    def __init__(self, registry: Registry, rng: random.Random, month_start: datetime, month_end: datetime):
        self.reg, self.rng = registry, rng
        self.start, self.end = month_start, month_end
        self.compiled = {aid: registry.latest(aid) for aid in AGREEMENTS}
        self.zones = {aid: ZoneInfo(z) for aid, (_, _, _, z) in AGREEMENTS.items()}
        self.ids = list(AGREEMENTS)
        self.shares = [AGREEMENTS[a][0] for a in self.ids]

    def open_times(self, n: int) -> list[tuple[datetime, str]]:
        """n opening instants (sorted) with their agreement; weekday local 08-18 weighted x4."""
        rng, span = self.rng, (self.end - self.start).total_seconds()
        out = []
        while len(out) < n:
            aid = rng.choices(self.ids, self.shares)[0]
            t = self.start + timedelta(seconds=int(rng.random() * span))
            local = t.astimezone(self.zones[aid])
            weight = 4 if local.weekday() < 5 and 8 <= local.hour < 18 else (1.5 if 7 <= local.hour < 21 else 0.6)
            if rng.random() * 4 < weight:
                out.append((t, aid))
        out.sort(key=lambda x: x[0])
        return out

    def _wall(self, compiled, clock: str, priority: str, t0: datetime, fraction: float) -> datetime:
        """Wall instant at which ``fraction`` of the clock's target has been counted from t0."""
        rule = compiled.target(clock, priority)
        if rule is None:
            return t0 + FALLBACK[clock] * fraction
        return rule.calendar.add(t0, rule.within * fraction)

    def ticket(self, n: int, t0: datetime, aid: str) -> list[tuple[datetime, int, dict]]:
        """All events of one ticket as (time, order within the ticket, event) in lifecycle order."""
        rng, compiled = self.rng, self.compiled[aid]
        _, customer, services, _ = AGREEMENTS[aid]
        priority = rng.choices(PRIORITIES, PRIORITY_WEIGHTS)[0]
        service = services[0] if rng.random() < 0.7 else services[1]
        events: list[tuple[datetime, dict]] = []

        def add(t: datetime, type_: str, **fields) -> None:
            events.append((t, {"type": f"ticket.{type_}", **fields}))

        opened = {"priority": priority, "service": service, "customer": customer,
                  "summary": f"{service}: {rng.choice(SUMMARIES)}", "attributes": {"channel": rng.choice(("portal", "email", "phone"))}}
        if rng.random() < 0.9:
            opened = {"agreement": aid, **opened}
        add(t0, "opened", **opened)
        minute = timedelta(minutes=1)

        t_assign = None
        if rng.random() < 0.92:
            t_assign = t0 + timedelta(seconds=int(rng.expovariate(1 / 300)) + 5)
            add(t_assign, "assigned", assignee=f"agent-{rng.randrange(200):03d}", group=f"{aid.split('-')[0]}-l{rng.choice((1, 2))}")

        if rng.random() < 0.015:  # cancelled early (duplicate, wrong queue, ...)
            add(max(t0, t_assign or t0) + timedelta(minutes=rng.randint(5, 120)), "cancelled")
            return self._finish(events)

        f_ack = rng.uniform(0.05, 0.95) if rng.random() < 0.87 else rng.uniform(1.02, 2.5)
        t_ack = max(self._wall(compiled, "response", priority, t0, f_ack), (t_assign or t0) + minute)
        add(t_ack, "acknowledged")

        f_res = rng.uniform(0.1, 0.95) if rng.random() < 0.88 else rng.uniform(1.05, 3.0)
        t_res = max(self._wall(compiled, "resolution", priority, t0, f_res), t_ack + 5 * minute)

        # pauses: the resolution clock stops accruing, so the wall resolution moves out
        for status, share, mean_h in (("pending_customer", 0.18, 5), ("pending_vendor", 0.05, 10)):
            if rng.random() < share:
                begin = t_ack + (t_res - t_ack) * rng.uniform(0.1, 0.8)
                length = timedelta(seconds=int(rng.expovariate(1 / (mean_h * 3600))) + 60)
                add(begin, "status_changed", status=status)
                add(begin + length, "status_changed", status="in_progress")
                t_res += length

        if rng.random() < 0.05:
            step = -1 if priority != "P1" and (priority == "P4" or rng.random() < 0.5) else 1
            new = PRIORITIES[PRIORITIES.index(priority) + step]
            add(t0 + (t_res - t0) * rng.uniform(0.05, 0.7), "priority_changed", priority=new)

        if priority == "P1":  # the update clock: a public update every 10-35 min
            t = t_ack + timedelta(minutes=rng.uniform(10, 35))
            while t < t_res:
                add(t, "updated", public=rng.random() < 0.9)
                t += timedelta(minutes=rng.uniform(10, 35))
        else:
            for _ in range(min(int(rng.expovariate(1 / 1.5)), 8)):
                add(t0 + (t_res - t0) * rng.uniform(0.05, 0.95), "updated", public=rng.random() < 0.8)

        if t_assign is not None and rng.random() < 0.08:
            add(t_ack + (t_res - t_ack) * rng.uniform(0.1, 0.9), "assigned",
                assignee=f"agent-{rng.randrange(200):03d}", group=f"{aid.split('-')[0]}-l3")

        add(t_res, "resolved")
        t_last = t_res
        if rng.random() < 0.03:
            t_reopen = t_res + timedelta(seconds=rng.randint(3600, 48 * 3600))
            add(t_reopen, "reopened")
            t_last = t_reopen + timedelta(seconds=int(rng.expovariate(1 / (6 * 3600))) + 600)
            add(t_last, "resolved")
        add(t_last + timedelta(seconds=rng.randint(24 * 3600, 72 * 3600)), "closed")
        return self._finish(events)

    @staticmethod
    def _finish(events: list[tuple[datetime, dict]]) -> list[tuple[datetime, int, dict]]:
        # Lifecycle order is the list order; secondary events (updates, pauses, priority) were
        # drawn inside (t0, t_res) so a stable sort by time keeps every milestone in place.
        events.sort(key=lambda e: e[0])
        return [(t.replace(microsecond=0), i, e) for i, (t, e) in enumerate(events)]


def generate(out: Path, tickets: int, seed: int, month: str) -> dict:
    out.parent.mkdir(parents=True, exist_ok=True)
    agreements_dir = write_agreements(out.parent / "agreements")
    registry = Registry(load_agreements([agreements_dir]))
    year, mon = (int(x) for x in month.split("-"))
    # All arithmetic in UTC: aware datetimes sharing a zone add and compare by wall time (DST!).
    start = datetime(year, mon, 1, tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)
    rng = random.Random(seed)
    work = Workload(registry, rng, start, end)
    opens = work.open_times(tickets)

    counts: Counter = Counter()
    per_agreement: Counter = Counter()
    per_priority: Counter = Counter()
    heap: list = []
    seq = 0
    first = last = None
    utc_share = 0.1
    with out.open("wb") as fh:
        def flush(before: datetime | None) -> None:
            nonlocal first, last
            while heap and (before is None or heap[0][0] < before):
                t, _, line = heapq.heappop(heap)
                fh.write(line)
                first = first or t
                last = t

        for n, (t0, aid) in enumerate(opens, start=1):
            flush(t0)
            zone = work.zones[aid]
            for t, i, event in work.ticket(n, t0, aid):
                ticket = f"INC-{n:07d}"
                stamp = (t.astimezone(UTC).isoformat().replace("+00:00", "Z") if rng.random() < utc_share
                         else t.astimezone(zone).isoformat())
                record = {"id": f"{ticket}-{i + 1}", "type": event.pop("type"), "time": stamp, "ticket": ticket, **event}
                counts[record["type"]] += 1
                if record["type"] == "ticket.opened":
                    per_agreement[aid] += 1
                    per_priority[record["priority"]] += 1
                heapq.heappush(heap, (t, seq, orjson.dumps(record) + b"\n"))
                seq += 1
        flush(None)
    meta = {
        "events_file": str(out), "agreements": str(agreements_dir), "tickets": tickets, "seed": seed, "month": month,
        "events": sum(counts.values()), "by_type": dict(sorted(counts.items())),
        "by_agreement": dict(per_agreement), "by_priority": dict(sorted(per_priority.items())),
        "first": first.astimezone(UTC).isoformat() if first else None,
        "last": last.astimezone(UTC).isoformat() if last else None,
    }
    out.with_suffix(".meta.json").write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2) + b"\n")
    return meta


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=100_000, help="number of tickets (default 100000)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--month", default="2026-03", help="month the tickets open in, YYYY-MM (default 2026-03)")
    parser.add_argument("--out", type=Path, help="events JSONL (default bench/out/tickets-<n>-s<seed>.jsonl); "
                        "agreements go to <out dir>/agreements/")
    args = parser.parse_args(argv)
    out = args.out or ROOT / "bench" / "out" / f"tickets-{args.tickets}-s{args.seed}.jsonl"
    started = _time.perf_counter()
    meta = generate(out, args.tickets, args.seed, args.month)
    print(f"wrote {meta['events']} events for {args.tickets} tickets to {out} "
          f"({_time.perf_counter() - started:.1f}s); agreements in {meta['agreements']}", file=sys.stderr)
    print(orjson.dumps(meta, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
