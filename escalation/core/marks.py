"""Marks: how far each source's clock has got, for a consumer that merges several sources.

A source (an input partition's ticket or metric engine) sends a *mark* ``(instant, inclusive)``
after it has fired everything due before ``instant`` (and at it, when ``inclusive``). The desk
books money and closes periods only once every source's mark has passed them, so the result does
not depend on how the sources' records interleave in transit; the live input side keeps the same
record of its own sources' marks to send the ones that moved.

Invariants: a source's mark only moves forward (``(instant, inclusive)`` ordered, inclusive after
exclusive at one instant); ``passed`` is False until every expected source has marked. Pure.
"""

from __future__ import annotations

from typing import Any


class Marks:
    """Source number -> its latest mark ``(instant, inclusive)``; instants of any ordered type."""

    __slots__ = ("_at",)

    def __init__(self) -> None:
        self._at: dict[int, tuple[Any, bool]] = {}

    def __len__(self) -> int:
        return len(self._at)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Marks) and self._at == other._at

    def of(self, src: int) -> tuple[Any, bool] | None:
        return self._at.get(src)

    def items(self) -> list[tuple[int, tuple[Any, bool]]]:
        """``(source, mark)`` by source."""
        return sorted(self._at.items())

    def advance(self, src: int, at: Any, inclusive: bool) -> bool:
        """Source ``src`` has fired everything before ``at`` (at it too when ``inclusive``);
        whether its mark moved (an older mark changes nothing)."""
        new, old = (at, inclusive), self._at.get(src)
        if old is not None and new <= old:
            return False
        self._at[src] = new
        return True

    def passed(self, at: Any, closing: bool, sources: int) -> bool:
        """Every one of ``sources`` is past ``at``: at or after it (money), or after it, or at it
        inclusively (a close, ``closing``)."""
        if len(self._at) < sources:
            return False
        for mark, inclusive in self._at.values():
            if mark < at or (closing and mark == at and not inclusive):
                return False
        return True

    def clear(self) -> None:
        self._at.clear()
