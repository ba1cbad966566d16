"""Where the live engine's state lives between batches: a :class:`StateStore`.

A store holds JSON-ready values in named tables (``incidents``, ``services``, ``figures``,
``clocks``, ``desks``, ``marks``), each value belonging to one partition ``p``. The state side
reads a partition's entries when it (re)loads (``items``, ``get``), ``put``s the entries a batch
changed, and the caller takes the resulting writes with ``changes`` once the batch's outputs are
on the broker (state never runs ahead of the outputs it caused).

- :class:`MemoryStore`: dicts, for tests and benchmarks; a put is visible at once.
- :class:`TableStore`: Faust tables (or anything with ``get``/``items``/``__setitem__``).
  Puts are buffered:
  ``changes`` returns ``(table, p, key, bytes)`` writes for the caller to make (the app writes
  them as if processing a record of partition ``p``, after journaling them).

Invariants: ``changes`` returns each key put since the last call once (its last value), in put
order of first put, and forgets them; ``discard`` forgets unflushed puts (a failed batch).
``put`` returns the value's stored form (the very object ``changes`` hands over to be written, so
whoever keeps it shares it with the table), ``entries`` yields stored forms, and ``load`` turns a
stored form back into the value: the live engine keeps an open incident as its stored form
between batches (``escalation/live/frozen.py``).

A stored form (both stores) is bytes: ``b"<p>\\n"`` + the body, or ``b"<p> <note>\\n"`` + the
body when the value was put with a ``note`` (one line of ASCII that says something about the value
without decoding it: an open incident's next due instant, ``escalation/live/saved_due.py``). The
body is the JSON of the value (orjson), compressed with the package's dictionary when it is long
(``escalation/live/value_compression.py``: an open incident's ~800 B become ~190 B; bodies stored
as plain JSON read as before). The partition prefix lets a rebuild skip other partitions without
decoding them, and a bytes value is one object for the garbage collector instead of a tree of
dicts (the tables hold every open incident).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import orjson

from escalation.core.changes import FIGURES, INCIDENTS, SERVICES
from escalation.live.value_compression import compress, expand

#: the tables of the live state (Faust table names): those a core step changes
#: (``core/changes.py``), each partition's clock, and the desk's
CLOCKS = "clocks"
DESKS, MARKS = "desks", "marks"
INPUT_TABLES = (INCIDENTS, SERVICES, FIGURES, CLOCKS)
DESK_TABLES = (DESKS, MARKS)


def pack(p: int, data: Any, note: bytes = b"") -> bytes:
    """A table value: partition prefix (and ``note``, on the same line), then the JSON, compressed
    when long enough (``value_compression``)."""
    if note:
        return b"%d %b\n%b" % (p, note, compress(orjson.dumps(data)))
    return b"%d\n%b" % (p, compress(orjson.dumps(data)))


def unpack(raw: bytes) -> tuple[int, Any]:
    """(partition, value) of a table value (the body is read in place, not copied out first)."""
    head = raw.index(b"\n")
    return int(raw[:head].partition(b" ")[0]), orjson.loads(expand(memoryview(raw)[head + 1:]))


def note_of(raw: bytes) -> bytes:
    """The note a table value was packed with (b"" when none); its JSON is not read."""
    head = raw.index(b"\n")
    space = raw.find(b" ", 0, head)
    return b"" if space < 0 else raw[space + 1:head]


def owned_by(raw: bytes, p: int) -> bool:
    """Whether table value ``raw`` belongs to partition ``p`` (its prefix; nothing decoded)."""
    digits = b"%d" % p
    return raw.startswith(digits) and raw[len(digits):len(digits) + 1] in (b"\n", b" ")


def load(stored: bytes) -> Any:
    """The value of a stored form (``unpack`` without the partition)."""
    return unpack(stored)[1]


class StateStore(Protocol):
    """Named tables of JSON-ready values, each entry owned by a partition (see the module docstring)."""

    def get(self, table: str, key: str) -> Any | None: ...

    def items(self, table: str, p: int) -> Iterator[tuple[str, Any]]: ...

    def entries(self, table: str, p: int) -> Iterator[tuple[str, bytes]]: ...

    def load(self, stored: bytes) -> Any: ...

    def put(self, table: str, p: int, key: str, value: Any, note: bytes = b"") -> bytes: ...

    def changes(self) -> list[tuple[Any, int, str, Any]]: ...

    def discard(self) -> None: ...


class MemoryStore:
    """A store in dicts: ``tables[name][key] = (p, stored form)``; values are copied in and out
    (through JSON) so nothing is shared with the engine that put them."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, tuple[int, bytes]]] = {}
        self._changed: dict[tuple[str, str], None] = {}

    def get(self, table: str, key: str) -> Any | None:
        entry = self.tables.get(table, {}).get(key)
        return None if entry is None else load(entry[1])

    def items(self, table: str, p: int) -> Iterator[tuple[str, Any]]:
        return ((key, load(raw)) for key, raw in self.entries(table, p))

    def entries(self, table: str, p: int) -> Iterator[tuple[str, bytes]]:
        for key, (owner, raw) in list(self.tables.get(table, {}).items()):
            if owner == p:
                yield key, raw

    load = staticmethod(load)

    def put(self, table: str, p: int, key: str, value: Any, note: bytes = b"") -> bytes:
        raw = pack(p, value, note)
        self.tables.setdefault(table, {})[key] = (p, raw)
        self._changed[(table, key)] = None
        return raw

    def changes(self) -> list[tuple[Any, int, str, Any]]:
        out = [(table, self.tables[table][key][0], key, self.get(table, key)) for table, key in self._changed]
        self._changed.clear()
        return out

    def discard(self) -> None:
        self._changed.clear()  # puts were applied at once: a memory store has no rollback


class TableStore:
    """A store over Faust tables by name (partition-prefixed JSON bytes, puts buffered)."""

    def __init__(self, tables: Mapping[str, Any]) -> None:
        self.tables = dict(tables)
        self._pending: dict[tuple[str, str], tuple[int, bytes]] = {}

    def get(self, table: str, key: str) -> Any | None:
        raw = self.tables[table].get(key)
        return unpack(raw)[1] if raw else None

    def items(self, table: str, p: int) -> Iterator[tuple[str, Any]]:
        """(key, value) of the entries of partition ``p`` (others are not decoded)."""
        return ((key, self.load(raw)) for key, raw in self.entries(table, p))

    def entries(self, table: str, p: int) -> Iterator[tuple[str, bytes]]:
        """(key, stored bytes) of the entries of partition ``p``."""
        for key, raw in list(_partition_items(self.tables[table], p)):
            if raw and owned_by(raw, p):
                yield key, raw

    load = staticmethod(load)

    def put(self, table: str, p: int, key: str, value: Any, note: bytes = b"") -> bytes:
        raw = pack(p, value, note)
        self._pending[(table, key)] = (p, raw)
        return raw

    def changes(self) -> list[tuple[Any, int, str, bytes]]:
        """The writes ``(table object, p, key, bytes)`` of everything put since the last call."""
        out = [(self.tables[table], p, key, raw) for (table, key), (p, raw) in self._pending.items()]
        self._pending.clear()
        return out

    def discard(self) -> None:
        self._pending.clear()


def _partition_items(table: Any, p: int) -> Iterator[tuple[str, bytes]]:
    """The (key, raw value) pairs of ``table`` that may belong to partition ``p``.

    A Faust table on the RocksDB store keeps one database per partition (a value written as if
    processing a record of partition p, or recovered from changelog partition p, is in database
    p): read only that one, with the keys decoded as the app's JSON key serializer wrote them.
    Iterating the table would decode every partition's keys for each partition loaded (P x N
    keys; measured as a large part of a restart with many open incidents, bench/live_recovery.py).
    Anything else (the memory store, a dict): the whole table, filtered by the caller."""
    store = getattr(table, "data", None)
    dbs = getattr(store, "_dbs", None)   # faust.stores.rocksdb.Store (pinned faust 0.15.3)
    if isinstance(dbs, dict) and hasattr(store, "_visible_items"):
        db = dbs.get(p)
        if db is None:
            return iter(())
        return ((orjson.loads(key), value) for key, value in store._visible_items(db))
    return iter(table.items())
