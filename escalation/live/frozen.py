"""An engine's open incidents kept as stored bytes when not in use: between a live worker's
batches (:class:`FrozenIncidents`), and beyond a cap of decoded ones in a replay (:class:`CappedIncidents`).

A worker holds every open incident of its partitions, and the table holds each one's saved value
too (the memory store in the worker's heap; RocksDB in its page cache). A decoded incident costs
~1.3 KB (its clocks, datetimes and records) against ~0.2 KB for its stored bytes (compressed,
``escalation/live/value_compression.py``), and most incidents are not touched by a given batch.
So between batches an open incident is kept as its stored value, the very bytes object its table
holds (``StateStore.put`` returns it), and decoded again when a step first asks for it.

:class:`FrozenIncidents` is the ``incidents`` mapping of a live partition's
:class:`~escalation.core.engine.Engine`. Invariants:

- a value is an :class:`~escalation.core.tickets.state.Incident` or the stored bytes of one (a
  frozen entry); reading an entry (``[key]``, ``get``, ``items``, ``values``) returns the decoded
  incident and keeps it decoded until the next ``freeze`` of that key;
- ``freeze(key, stored)`` is called only with what the store holds for ``key`` at the end of a
  batch (or as loaded), so decoding it gives back an incident equal to the one it replaces (the
  codec's round trip, ``from_dict(to_dict(x)) == x``): outputs do not depend on whether an
  incident was frozen (live equals replay in the integration tests);
- at the end of a batch the changed incidents are frozen with their new stored values, then
  ``refreeze`` freezes again, with the bytes they were decoded from, those a step only read (a
  repeat, a rejected event): unchanged, since a step names every entry it changes. So between
  batches every open incident is frozen.

Costs one decode (~35 µs: expansion, JSON and the codec) the first time a batch touches a frozen incident;
the encode it replaces is what the batch's table write makes anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice
from typing import Any

from escalation.core.tickets.state import Incident, upgrade


class FrozenIncidents(dict):
    """``ticket -> Incident`` whose entries may be frozen (see the module docstring)."""

    __slots__ = ("_load", "_thawed")

    def __init__(self, load: Callable[[bytes], Any]) -> None:
        super().__init__()
        self._load = load  # the store's: stored bytes -> the saved value ({"incident": {...}})
        self._thawed: dict[str, bytes] = {}  # decoded since the last refreeze: key -> the bytes

    def freeze(self, key: str, stored: bytes) -> None:
        """Keep ``key``'s incident as ``stored``, its value in the store after this batch."""
        if stored.__class__ is not bytes:  # a store handing out another buffer type: a frozen entry is exactly bytes
            stored = bytes(stored)
        dict.__setitem__(self, key, stored)
        self._thawed.pop(key, None)

    def refreeze(self) -> None:
        """Freeze again the incidents decoded since the last call and not frozen since (read, not
        changed: see the module docstring); those closed since are gone already."""
        for key, stored in self._thawed.items():
            if dict.get(self, key) is not None:
                dict.__setitem__(self, key, stored)
        self._thawed.clear()

    def _thaw(self, key: str, stored: bytes) -> Incident:
        incident = Incident.from_dict(upgrade(self._load(stored)["incident"]))
        dict.__setitem__(self, key, incident)
        self._note_thawed(key, stored)
        return incident

    def _note_thawed(self, key: str, stored: bytes) -> None:
        """``key`` was decoded from ``stored``: ``refreeze`` freezes it again unless a batch wrote it."""
        self._thawed[key] = stored

    def __getitem__(self, key: str) -> Incident:
        value = dict.__getitem__(self, key)
        return self._thaw(key, value) if value.__class__ is bytes else value

    def get(self, key: str, default: Any = None) -> Any:
        value = dict.get(self, key, default)
        return self._thaw(key, value) if value.__class__ is bytes else value

    def values(self) -> list[Incident]:  # type: ignore[override]
        return [self[key] for key in self]

    def items(self) -> list[tuple[str, Incident]]:  # type: ignore[override]
        return [(key, self[key]) for key in self]

    def frozen(self) -> int:
        """How many entries are frozen (a figure for benchmarks and tests)."""
        return sum(1 for value in dict.values(self) if value.__class__ is bytes)


class CappedIncidents(FrozenIncidents):
    """The open incidents of a replay: at most ``cap`` decoded between steps, the rest frozen.

    A replay has no store and no batches: every incident stays decoded (~1.5 KB each) unless
    something freezes it. Invariants:

    - ``evict`` is called between steps only (the engine holds no incident across steps), and
      freezes the incidents decoded longest ago (first decoded or created, first frozen) until at
      most ``cap`` are decoded, each as ``dump(incident)`` (the stored form the live store would
      make, so decoding it gives an equal incident: outputs do not depend on the cap);
    - below the cap nothing is frozen: a replay with fewer open incidents than ``cap`` pays only
      the reads through this mapping (a method call each).
    """

    __slots__ = ("_cap", "_decoded", "_dump")

    def __init__(self, load: Callable[[bytes], Any], dump: Callable[[Incident], bytes], cap: int) -> None:
        super().__init__(load)
        self._cap, self._dump = cap, dump
        self._decoded: dict[str, None] = {}  # the decoded entries, in the order they became decoded

    def __setitem__(self, key: str, incident: Incident) -> None:
        dict.__setitem__(self, key, incident)
        self._decoded[key] = None

    def __delitem__(self, key: str) -> None:
        dict.__delitem__(self, key)
        self._decoded.pop(key, None)

    def _note_thawed(self, key: str, stored: bytes) -> None:
        self._decoded[key] = None  # decoded again: the last to be frozen by ``evict``

    def evict(self) -> None:
        """Freeze the longest-decoded incidents beyond ``cap`` (between steps only)."""
        decoded = self._decoded
        if len(decoded) <= self._cap:
            return
        for key in list(islice(decoded, len(decoded) - self._cap)):
            del decoded[key]
            incident = dict.get(self, key)
            if incident is not None and incident.__class__ is not bytes:
                dict.__setitem__(self, key, self._dump(incident))
