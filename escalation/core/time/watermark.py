"""The closed-until watermark: one rule for every kind of period that opens and closes.

SLO periods (``services/slo.py``), a source's report figures (``reporting/figures.py``) and the
desk's merged report periods (``money/desk.py``) all keep their open periods by label next to a
``closed_until_us`` watermark, the end of the latest period closed. A period is open from its
first record until it closes; once closed it is gone and never opens again, because the
watermark refuses every period that starts before it (a late record for it is refused or
dropped by the caller, each with its own wording).

Invariants: the watermark only moves forward (``mark_closed``); ``closed_before`` is False while
nothing has closed. Pure.
"""

from __future__ import annotations

from typing import Protocol


class Watermarked(Protocol):
    closed_until_us: int | None


def closed_before(state: Watermarked | None, start_us: int) -> bool:
    """Whether a period starting at ``start_us`` lies before the watermark: closed already."""
    return state is not None and state.closed_until_us is not None and start_us < state.closed_until_us


def mark_closed(state: Watermarked, end_us: int) -> None:
    """A period ending at ``end_us`` closed: move the watermark to its end (never back)."""
    state.closed_until_us = max(state.closed_until_us or end_us, end_us)
