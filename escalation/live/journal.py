"""A batch's table writes land whole or not at all, per partition (restart safety after kill -9).

Why: a batch changes several tables (incidents, services, report figures, clocks, offsets; the
desk's desks, marks, offsets), and each table has its own changelog topic. Without transactions
(the embedded broker has none, DESIGN.md §7) a kill -9 in the middle of a batch's writes could
leave, say, an incident that has seen an event beside report figures that never counted the
outputs it caused: the event, consumed again, is then ignored as a repeat and the figures stay
short (measured: `report.published` one escalation and two met clocks short in about one of three
kill -9 restarts under load, with and without the input guard).

How (the numbers are the order in the code):
1. Before a batch writes its tables, each partition ``p`` it changed gets ONE record in the
   ``journal`` table (key ``<agent>:<p>``): every (table, key, value) the batch writes for ``p``,
   zlib-compressed. One record is atomic. Its form: ``b"<p> latin-1\\n"`` + zlib of the JSON list
   of ``[table, key, value]``, each value's bytes as a latin-1 string (a stored value may be binary,
   ``escalation/live/value_compression.py``); a record whose line has no `` latin-1`` (written
   before) holds values as UTF-8 strings.
2. The producer is flushed: the journal is on the broker before any table write of the batch.
3. The table writes follow as before.
On load (the first batch that touches ``p`` after an assignment or a failed batch),
:meth:`Journal.restore` writes back every journal value that the tables do not hold, so the
tables become exactly the state after the last batch that started writing them. The journal of
``p`` is always its last batch's: every batch that writes anything for ``p`` replaces it, and the
writes of earlier batches were flushed with step 2 of the next one.

A journal record larger than ``MAX_JOURNAL`` bytes (compressed) is not written; an empty one
replaces it so an older journal is never restored over newer values (a warning says so).
"""

from __future__ import annotations

import logging
import zlib
from typing import Any, Callable

import orjson

log = logging.getLogger(__name__)

#: Largest journal record (bytes, compressed); Kafka's default message size limit is 1 MiB.
MAX_JOURNAL = 900_000
#: the mark of a journal record whose values are latin-1 strings (one character per byte)
LATIN1 = b"latin-1"

Write = tuple[Any, int, str, bytes]  # (table, partition, key, value)


class Journal:
    """The journal of one agent (``name``) over ``tables`` (Faust tables by their name)."""

    def __init__(self, name: str, journal_table: Any, tables: list[Any]) -> None:
        self.name, self.table = name, journal_table
        self.tables = {t.name: t for t in tables}
        self._restored: set[int] = set()

    def _key(self, p: int) -> str:
        return f"{self.name}:{p}"

    def records(self, writes: list[Write]) -> list[Write]:
        """Step 1: one journal write per partition in ``writes`` (to be made, then flushed, first)."""
        by_p: dict[int, list] = {}
        for table, p, key, value in writes:
            by_p.setdefault(p, []).append([table.name, key, value.decode("latin-1")])
        out = []
        for p, entries in sorted(by_p.items()):
            blob = zlib.compress(orjson.dumps(entries), 1)
            if len(blob) > MAX_JOURNAL:
                log.warning("escalation: the %s journal of partition %d would take %d bytes; this batch's writes "
                            "are not journalled", self.name, p, len(blob))
                blob = zlib.compress(b"[]")
            out.append((self.table, p, self._key(p), b"%d %b\n%b" % (p, LATIN1, blob)))
        return out

    def restore(self, partitions: set[int], write: Callable[[Any, int, str, bytes], None]) -> int:
        """Write back what the tables miss of the journals of ``partitions`` not restored since the
        last :meth:`discard`; the number of values written back."""
        restored = 0
        for p in sorted(partitions - self._restored):
            raw = self.table.get(self._key(p))
            self._restored.add(p)
            if not raw:
                continue
            head, _, blob = raw.partition(b"\n")
            encoding = "latin-1" if head.endswith(b" " + LATIN1) else "utf-8"
            for name, key, value in orjson.loads(zlib.decompress(blob)):
                table, data = self.tables[name], value.encode(encoding)
                if table.get(key) != data:
                    write(table, p, key, data)
                    restored += 1
        if restored:
            log.warning("escalation: %s: %d table values of an interrupted batch restored from the journal",
                        self.name, restored)
        return restored

    def discard(self) -> None:
        """Restore again on next use (a rebalance or a failed batch: the tables may have changed)."""
        self._restored.clear()
