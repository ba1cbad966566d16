"""Changelog recovery in bulk for the RocksDB store: a worker with many open incidents restarts fast.

A worker that is assigned a table partition whose RocksDB database is behind its changelog (a
new machine, a lost or old directory) must read the missing records before it may process. Faust
(faust-streaming 0.15) recovers one record at a time through its stream machinery: an event
object, a queue round trip and bookkeeping per record, ~3,000 records/s on the bench machine
(``bench/live_recovery.py``), ~6 minutes for 1M open incidents.

:class:`BulkRecoveringStore` is Faust's RocksDB store with one step added where Faust opens the
databases of the partitions it was assigned (``assign_partitions``, before Faust's own recovery
looks at them): it reads each active changelog partition from its persisted offset to the log
end with a plain consumer (:class:`~escalation.live.offsets.RangeReader`, whole fetches) and
writes each fetch to the partition's database in one write batch, then persists the offset of
the last record written, exactly as Faust's ``apply_changelog_batch`` does for its batches (key
and value bytes as on the changelog; a null value deletes). Faust's recovery then starts from that
offset and reads only what the log end had beyond it (nothing, normally), so the state is what
Faust alone would have rebuilt.

Invariants: after each write batch the persisted offset is that of the last record written, so
an interrupted bulk read (an error, a timeout: logged as a warning) is resumed, by the next one
or by Faust's recovery, from where it stopped. Standby
partitions are left to Faust. Without a reader registered for the app (:func:`use_reader`) the
store is Faust's store unchanged. The app asks for it with the store URL
``escalation+rocksdb://`` (what ``ESCALATION_STORE=rocksdb://`` selects); the files on disk are
Faust's, so a directory written by either store is read by the other.
"""

from __future__ import annotations

import contextlib
import logging
import time
import weakref
from typing import Any

from faust.stores import STORES
from faust.stores import rocksdb as faust_rocksdb
from faust.types import TP

from escalation.live.offsets import RangeReader

log = logging.getLogger(__name__)

#: the store URL scheme of :class:`BulkRecoveringStore` (registered with Faust below)
SCHEME = "escalation+rocksdb"
#: longest a bulk read of one partition may take before it gives up (Faust's recovery then
#: reads the rest, from the last offset written): 1M records at a slow 10k records/s
BULK_READ_TIMEOUT = 100.0

_READERS: weakref.WeakKeyDictionary[Any, RangeReader] = weakref.WeakKeyDictionary()


def use_reader(app: Any, reader: RangeReader) -> None:
    """Let ``app``'s bulk-recovering stores read changelogs with ``reader``."""
    _READERS[app] = reader


class BulkRecoveringStore(faust_rocksdb.Store):
    """Faust's RocksDB store whose assigned changelog partitions are read in bulk (module docstring)."""

    async def assign_partitions(self, table: Any, tps: set, generation_id: int = 0) -> None:
        await super().assign_partitions(table, tps, generation_id)
        reader = _READERS.get(self.app)
        if reader is None:
            return
        standbys = self.app.assignor.assigned_standbys()
        mine = sorted(((tp.topic, tp.partition) for tp in tps
                       if tp.topic in table.changelog_topic.topics and tp not in standbys), key=lambda k: k[1])
        if not mine:
            return
        ends = await reader.ends(mine)  # asked once for all: a broker round trip
        for topic, partition in mine:
            last = self.persisted_offset(TP(topic, partition))
            # from the start of the log when nothing is persisted: offset 0, or the first offset the
            # log still holds (the reader's consumer resets to the earliest); not the broker's
            # answer for the first offset, which the embedded broker gave as 357 for a log from 0
            start = 0 if last is None else last + 1
            if start < ends[(topic, partition)]:
                try:
                    await self._bulk_read(reader, TP(topic, partition), start, ends[(topic, partition)])
                except Exception as err:  # noqa: BLE001 - what was written is persisted: Faust reads the rest
                    log.warning("bulk recovery of %s[%d] stopped (%s); Faust's recovery reads the rest",
                                topic, partition, err)

    async def _bulk_read(self, reader: RangeReader, tp: TP, start: int, end: int) -> None:
        """Bring partition ``tp``'s database from ``start`` up to the changelog's ``end`` (module docstring)."""
        started, count = time.perf_counter(), 0
        log.info("bulk recovery of %s[%d]: offsets %d..%d", tp.topic, tp.partition, start, end - 1)
        db = self._db_for_partition(tp.partition)
        async with contextlib.aclosing(reader.chunks(tp.topic, tp.partition, start, end, BULK_READ_TIMEOUT)) as chunks:
            async for records in chunks:
                batch = self._write_batch()
                for record in records:
                    if record.value is None:
                        batch.delete(record.key)
                    else:
                        batch.put(record.key, record.value)
                db.write(batch)
                self.set_persisted_offset(tp, records[-1].offset)
                count += len(records)
        took = time.perf_counter() - started
        log.info("bulk recovery of %s[%d]: %d records in %.1f s (%.0f records/s)", tp.topic, tp.partition, count,
                 took, count / took if took else 0.0)

    def _write_batch(self) -> Any:
        if self.use_rocksdict:
            return faust_rocksdb.rocksdict.WriteBatch(raw_mode=True)
        return faust_rocksdb.rocksdb.WriteBatch()


STORES.aliases[SCHEME] = f"{__name__}:BulkRecoveringStore"
