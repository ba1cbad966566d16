"""Write examples/events/acme-erp-metrics.jsonl: five days of 5-minute availability slices.

erp-prod, 2026-03-27 00:00 to 2026-04-01 00:00 Europe/Berlin (1428 slices: the night of
2026-03-29 has 23 hours), with:
- background errors (one failed request in every fifth slice);
- a full outage 01:15Z-02:30Z on Sunday 2026-03-29, inside the `sunday-patch` maintenance window
  (02:00 local does not exist that night, so the window runs 03:00-05:00 CEST = 01:00Z-03:00Z):
  excluded, so it costs nothing and raises no alert;
- a 90-minute outage with half of the requests failing on Monday 2026-03-30 10:00-11:30 CEST
  (08:00Z-09:30Z): burn-rate alerts fire and clear, and March closes at ~99.4 % -> 10 % credit;
- one redelivered slice (same id), ignored as a duplicate.

Deterministic: run it again and the file is byte-identical.
Usage: python bench/gen_example_metrics.py [OUT]
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

UTC = timezone.utc
START = datetime(2026, 3, 26, 23, 0, tzinfo=UTC)        # 2026-03-27 00:00 CET
END = datetime(2026, 3, 31, 22, 0, tzinfo=UTC)          # 2026-04-01 00:00 CEST
STEP = timedelta(minutes=5)
MAINTENANCE_OUTAGE = (datetime(2026, 3, 29, 1, 15, tzinfo=UTC), datetime(2026, 3, 29, 2, 30, tzinfo=UTC))
OUTAGE = (datetime(2026, 3, 30, 8, 0, tzinfo=UTC), datetime(2026, 3, 30, 9, 30, tzinfo=UTC))
DUPLICATE_OF = 600
OUT = Path(__file__).resolve().parent.parent / "examples" / "events" / "acme-erp-metrics.jsonl"


def _z(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def slices() -> list[dict]:
    out, i, t = [], 0, START
    while t < END:
        total = 2400 + (i * 37) % 600
        bad = 1 if i % 5 == 0 else 0
        if MAINTENANCE_OUTAGE[0] <= t < MAINTENANCE_OUTAGE[1]:
            bad = total
        elif OUTAGE[0] <= t < OUTAGE[1]:
            bad = total // 2
        out.append({"id": f"m-erp-{i:05d}", "type": "metric.observed", "service": "erp-prod",
                    "sli": "availability", "start": _z(t), "end": _z(t + STEP), "good": total - bad, "total": total})
        if i == DUPLICATE_OF:
            out.append(dict(out[-1]))
        i, t = i + 1, t + STEP
    return out


def main(path: Path = OUT) -> None:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in slices()))
    print(f"wrote {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
