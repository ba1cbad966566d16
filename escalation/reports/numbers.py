"""Numbers as reports count and show them: ISO 8601 durations in seconds, percentiles, and
counted time as text."""

from __future__ import annotations

from escalation.agreement.durations import parse_wall_clock


def iso_seconds(text: str | None) -> float | None:
    """``PT26H7M30S`` -> 94050.0, ``-PT5S`` -> -5.0 (the outputs' ``iso_duration`` text read back
    through the one duration parser); None for None or an unparseable value."""
    if not text:
        return None
    negative = text.startswith("-")
    try:
        seconds = parse_wall_clock(text.removeprefix("-")).total_seconds()
    except ValueError:
        return None
    return -seconds if negative else seconds


def percentile(values: list[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def seconds_text(seconds: float | None) -> str:
    """94050 -> ``26h 07m``; 600 -> ``10m``; 45 -> ``45s``. Hours are the largest unit: counted
    time is exact hours, a day of it is not a calendar day."""
    if seconds is None:
        return "–"
    sign = "-" if seconds < 0 else ""
    s = int(round(abs(seconds)))
    hours, rest = divmod(s, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    if minutes:
        return f"{sign}{minutes}m" + (f" {secs:02d}s" if secs else "")
    return f"{sign}{secs}s"
