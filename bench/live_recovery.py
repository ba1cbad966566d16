"""Restart with many open incidents: how long until a worker processes again (RocksDB store).

    python bench/live_recovery.py [--incidents 1000000] [--templates 200] [--producers 4] [--skip-kept]
    python bench/live_recovery.py --in-process 40000    # the core's load cost per incident, no broker

1. **State**: N open incidents are written straight to the worker's ``incidents`` changelog topic
   (``<app_id>-incidents-changelog``, what a worker that had applied N ``ticket.opened`` would
   have written): the values are made by the core itself (``Partitions`` over a ``MemoryStore``)
   for ``--templates`` openings of the bench workload (bench/out/tickets-10000-s42.jsonl,
   bench/out/agreements) re-timed to now, then copied with a fresh ticket id each; key = the
   ticket as JSON (the app's key serializer), value = ``store.pack(p, incident, note)`` (the note:
   its next due instant, ``escalation/live/saved_due.py``), partition =
   the ticket key's partition on the tickets topic (aiokafka's default partitioner, as the
   producers of ``tickets`` use). Batched, but every partition ends with a one-record batch
   (Tansu's ListOffsets miscounts the log end after a multi-record batch, DESIGN.md §7; Faust
   would stop its recovery early).
2. **Fresh restart**: a worker (``ESCALATION_STORE=rocksdb://``, real ticker, shipped tick settings)
   starts in an empty directory, so Faust must rebuild every table from its changelog. One
   ``ticket.acknowledged`` per partition, for incidents in the table, waits on the tickets topic
   before it starts; "processing again" = every partition's ``sla.met`` (response) is on the
   timeline topic (it needs the incident recovered and loaded).
3. **Kept restart** (unless ``--skip-kept``): that worker stops (SIGTERM) and a new one starts in
   the same directory (its RocksDB files kept: Faust recovers only past the offsets it stored).

Prints, per restart: seconds from process start to the lifecycle "ready" line (partitions
assigned), to Faust's "Recovery complete" line (changelog records read and the rate), to the
last probe output; the table loads of ``Partitions`` (``loaded source ...`` lines) and the
worker's CPU seconds and peak RSS. Logs are kept in ``--keep-logs DIR`` when given.

Starts an EmbeddedBroker on 127.0.0.1 (or uses $ESCALATION_TEST_BROKER; 1M incidents put ~1.5 GB
in the broker's memory, so prefer the default) and stops every process it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import re
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402

from escalation.live.desk_book import key_partition  # noqa: E402
from escalation.live.store import INCIDENTS  # noqa: E402
from escalation.live.topics import ensure_topics, load_topics  # noqa: E402
from escalation.live.value_compression import compress, expand  # noqa: E402

_spec = importlib.util.spec_from_file_location("_live_bench", ROOT / "bench/live_bench.py")
lb = importlib.util.module_from_spec(_spec)
sys.modules["_live_bench"] = lb
_spec.loader.exec_module(lb)
lt = lb.lt
P = lt.PARTITIONS
AGREEMENTS = ROOT / "bench/out/agreements"
WORKLOAD = ROOT / "bench/out/tickets-10000-s42.jsonl"


def partition_of(key: bytes) -> int:
    return key_partition(key, P)


def templates(k: int, at: datetime) -> list[tuple[str, bytes]]:
    """(placeholder ticket, stored form in partition 0) of ``k`` openings of the workload re-timed to ``at``.
    ``PROBES`` gets the placeholders whose incident has a response target (an acknowledgement
    then gives an ``sla.met``; a running response clock without a target, as for P4, gives none)."""
    from escalation.cli.common import load_registry
    from escalation.core.events import decode_event
    from escalation.live.partitions import Partitions
    from escalation.live.store import MemoryStore

    store = MemoryStore()
    parts = Partitions(load_registry([str(AGREEMENTS)]), store, P)
    out = []
    for line in WORKLOAD.read_bytes().splitlines():
        ev = orjson.loads(line)
        if ev["type"] != "ticket.opened":
            continue
        tpl = f"TPLQ{len(out):05d}Z"
        ev |= {"id": f"{tpl}-1", "ticket": tpl, "time": at.isoformat()}
        parts.step(0, decode_event(orjson.dumps(ev)))
        out.append(tpl)
        if len(out) == k:
            break
    parts.end()
    engine = parts.engine(parts.source(0, False))
    PROBES.clear()
    PROBES.update(tpl for tpl in out if (i := engine.incidents.get(tpl)) is not None
                  and parts.registry.get(i.agreement, i.revision).rule_of(i, "response") is not None)
    return [(tpl, store.tables[INCIDENTS][tpl][1]) for tpl in out]


PROBES: set[str] = set()  # templates a probe may use (see ``templates``)


def ticket(i: int) -> str:
    return f"RCV-{i:07d}"


def stored_as(tpl: tuple[str, bytes], name: str, part: int, notes: bool = True) -> bytes:
    """Template ``tpl``'s stored form for ticket ``name`` in partition ``part`` (= what the store
    would have put), with its note (its due instant) or, ``notes=False``, without (as saved before notes)."""
    placeholder, stored = tpl
    assert stored.startswith(b"0"), "templates are made in partition 0"
    head, _, body = stored.partition(b"\n")
    body = compress(bytes(expand(body)).replace(placeholder.encode(), name.encode()))
    return b"%d%b\n%b" % (part, head[1:] if notes else b"", body)


async def write_changelog(bootstrap: str, topic: str, n: int, tpls: list[tuple[str, bytes]], producers: int) -> int:
    """N incidents on ``topic`` (``producers`` producers in parallel, each partition ending with a
    one-record batch); bytes written."""
    async def one(share: range) -> int:
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024)
        await p.start()
        size, pending = 0, []
        try:
            for i in share:
                name = ticket(i)
                part = partition_of(name.encode())
                value = stored_as(tpls[i % len(tpls)], name, part)
                key = orjson.dumps(name)
                size += len(value) + len(key)
                pending.append(await p.send(topic, value, key=key, partition=part))
                if len(pending) >= 20000:
                    await asyncio.gather(*pending)
                    pending.clear()
            await asyncio.gather(*pending)
        finally:
            await p.stop()
        return size

    sizes = await asyncio.gather(*(one(range(j, n, producers)) for j in range(producers)))
    await end_with_single_records(bootstrap, topic)
    return sum(sizes)


async def end_with_single_records(bootstrap: str, topic: str) -> None:
    """Tansu's ListOffsets answers the log end of a partition whose last batch holds many records
    short (measured: 993 for 1,000 records in batches, 1,001 after one more one-record batch),
    which would stop Faust's recovery early (DESIGN.md §7). So each partition ends with a
    one-record batch: its last record again (same key and value: nothing changes)."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=1)
    await c.start()
    await p.start()
    try:
        for part in range(P):
            tp = TopicPartition(topic, part)
            c.assign([tp])
            await c.seek_to_end(tp)
            pos = await c.position(tp)
            c.seek(tp, max(0, pos - 50))
            last = None
            while True:
                got = (await c.getmany(tp, timeout_ms=1000)).get(tp, [])
                if not got:
                    break
                last = got[-1]
            if last is not None:
                await (await p.send(topic, last.value, key=last.key, partition=part))
    finally:
        await c.stop()
        await p.stop()


async def create_topic(bootstrap: str, name: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, P, 1, topic_configs={"cleanup.policy": "compact"})])
    finally:
        await admin.close()


def probes(n: int, avoid: set[str], tpls: list[tuple[str, bytes]]) -> list[str]:
    """One recovered ticket per partition whose incident has a response target, not in ``avoid``."""
    found: dict[int, str] = {}
    for i in range(n):
        name = ticket(i)
        p = partition_of(name.encode())
        if p not in found and name not in avoid and tpls[i % len(tpls)][0] in PROBES:
            found[p] = name
        if len(found) == P:
            break
    return [found[p] for p in sorted(found)]


def acked(name: str, at: datetime) -> tuple[bytes, bytes]:
    ev = {"id": f"ack-{name}", "type": "ticket.acknowledged", "time": at.isoformat(), "ticket": name}
    return name.encode(), orjson.dumps(ev)


async def wait_probes(bootstrap: str, topic: str, names: set[str], timeout: float) -> dict[str, float]:
    """Arrival time of the response ``sla.met`` of each of ``names`` on ``topic``."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
    await c.start()
    seen: dict[str, float] = {}
    try:
        tps = [TopicPartition(topic, p) for p in range(P)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        deadline = time.time() + timeout
        while set(seen) < names and time.time() < deadline:
            for msgs in (await c.getmany(timeout_ms=100)).values():
                for m in msgs:
                    if b'"sla.met"' in m.value:
                        o = json.loads(m.value)
                        if o["subject"] in names and o["data"].get("clock") == "response":
                            seen.setdefault(o["subject"], time.time())
        return seen
    finally:
        await c.stop()


_TS = re.compile(r'"ts":\s*"([^"]+)"|^(\d{4}-\d\d-\d\dT[\d:.]+Z)')


def log_events(path: Path) -> list[tuple[float, str]]:
    """(epoch seconds, message) of the worker's log lines with a timestamp."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            doc = json.loads(line)
            ts, msg = doc.get("ts"), str(doc.get("msg", ""))
        except ValueError:
            m = _TS.search(line)
            ts, msg = (m.group(2) if m else None), line
        if ts:
            out.append((datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp(), msg))
    return out


def restart(broker, space, cwd: Path, label: str, names: list[str], n_changelog: int) -> dict:
    """Start a worker in ``cwd`` with the probes waiting; time until every probe's output."""
    topic = f"{space.prefix}tickets"
    lt.produce(broker, topic, [acked(name, datetime.now(timezone.utc)) for name in names])
    t0 = time.time()
    w = lb.BenchWorker(broker, space, cwd, "--loglevel", "INFO", "--log-format", "json",   # Faust's datadir: cwd
                       agreements=AGREEMENTS, name=f"recovery-{label}", env={"ESCALATION_STORE": "rocksdb://"})
    try:
        seen = asyncio.run(wait_probes(broker.bootstrap, f"{space.prefix}timeline", set(names), timeout=900))
        cpu, rss = lb.cpu_seconds(w.proc.pid), lb.peak_rss_mib(w.proc.pid)
    finally:
        w.stop()
    events = log_events(w.log_path)
    first = lambda pat: next((t - t0 for t, m in events if pat in m), float("nan"))  # noqa: E731
    loads = [(t - t0, m) for t, m in events if m.startswith("loaded source")]
    bulk = [m for _, m in events if m.startswith("bulk recovery of") and " records in " in m]
    return {"label": label, "probes": len(seen), "processing_s": max(seen.values()) - t0 if len(seen) == len(names) else float("nan"),
            "first_probe_s": min(seen.values()) - t0 if seen else float("nan"),
            "ready_s": first("escalation: ready"),
            "recovery_start_s": min((t for t in (first("bulk recovery of"), first("Highwater for active changelog"))
                                     if t == t), default=float("nan")),
            "bulk": bulk,
            "recovered_s": first("Recovery complete"), "loads": loads, "cpu_s": cpu, "peak_rss_mib": rss,
            "log": str(w.log_path), "records": n_changelog}


def report(r: dict, n: int) -> None:
    rec = r["recovered_s"] - (r["recovery_start_s"] if r["recovery_start_s"] == r["recovery_start_s"] else r["ready_s"])
    print(f"restart [{r['label']}]: processing again after {r['processing_s']:.1f}s "
          f"(first probe {r['first_probe_s']:.1f}s; {r['probes']}/{P} probes) with {n:,} open incidents; "
          f"ready (assigned) {r['ready_s']:.1f}s, changelog recovery {r['recovery_start_s']:.1f}s -> "
          f"{r['recovered_s']:.1f}s", flush=True)
    if rec == rec and rec > 0 and r["label"] == "fresh":
        print(f"  changelog recovery: {n:,} incident records in {rec:.1f}s = {n / rec:,.0f} records/s", flush=True)
    if r["bulk"]:
        got = sum(int(m.split(": ", 1)[1].split()[0]) for m in r["bulk"])
        took = sum(float(m.split(" records in ", 1)[1].split()[0]) for m in r["bulk"])
        print(f"  of which bulk reads (escalation/live/bulk_recovery.py): {got:,} records of {len(r['bulk'])} "
              f"changelog partitions in {took:.1f}s", flush=True)
    load_s = sum(float(m.rsplit(" in ", 1)[1].split()[0]) for _, m in r["loads"] if " in " in m)
    loaded = sum(int(m.split(": ", 1)[1].split()[0]) for _, m in r["loads"] if " incidents in " in m)
    print(f"  incidents loaded: {loaded:,} of {n:,}" + ("" if loaded == n else "  <-- NOT ALL: state lost"), flush=True)
    print(f"  table loads in Partitions: {len(r['loads'])} sources, {load_s:.1f}s in all; "
          + "; ".join(m for _, m in r["loads"] if " 0 " not in m), flush=True)
    print(f"  worker CPU {r['cpu_s']:.1f}s, peak RSS {r['peak_rss_mib']:,.0f} MiB; log {r['log']}", flush=True)


def load_cost(n: int, tpls: list[tuple[str, bytes]]) -> None:
    """In process, no broker: CPU per incident of loading partition 0 of ``n`` incidents through
    ``Partitions`` over a ``MemoryStore`` (no Faust), with the saved due instants (scheduled from
    the notes) and without them (each incident decoded and its due instant computed)."""
    from escalation.cli.common import load_registry
    from escalation.live.partitions import Partitions
    from escalation.live.store import MemoryStore

    registry = load_registry([str(AGREEMENTS)])
    for notes in (True, False):
        store = MemoryStore()
        table = store.tables.setdefault(INCIDENTS, {})
        for i in range(n):
            name = ticket(i)
            part = partition_of(name.encode())
            table[name] = (part, stored_as(tpls[i % len(tpls)], name, part, notes))
        parts = Partitions(registry, store, P)
        cpu = time.process_time()
        loaded = len(parts.engine(0).incidents)
        cpu = time.process_time() - cpu
        print(f"in process, {'with' if notes else 'without'} saved due instants: loaded {loaded:,} incidents of "
              f"partition 0 in {cpu:.2f}s CPU = {cpu / loaded * 1e6:.1f} us per incident ({n:,} in the store)",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--in-process", type=int, metavar="N", help="only the in-process load cost of N incidents")
    ap.add_argument("--incidents", type=int, default=1_000_000)
    ap.add_argument("--templates", type=int, default=200, help="distinct incident values made by the core")
    ap.add_argument("--producers", type=int, default=4, help="parallel producers writing the changelog")
    ap.add_argument("--skip-kept", action="store_true", help="only the fresh restart (empty RocksDB directory)")
    ap.add_argument("--keep-logs", metavar="DIR", help="copy the workers' logs here")
    a = ap.parse_args()
    if a.in_process:
        load_cost(a.in_process, templates(a.templates, datetime.now(timezone.utc)))
        return
    with lb.bench_broker() as broker, tempfile.TemporaryDirectory() as tmp:
        tmp_path, space = Path(tmp), lb.ns()
        asyncio.run(ensure_topics(broker.bootstrap, space.prefix, load_topics(), app_id=space.app_id, partitions=P))
        changelog = f"{space.app_id}-{INCIDENTS}-changelog"
        asyncio.run(create_topic(broker.bootstrap, changelog))
        tpls = templates(a.templates, datetime.now(timezone.utc))
        t0 = time.perf_counter()
        size = asyncio.run(write_changelog(broker.bootstrap, changelog, a.incidents, tpls, a.producers))
        took = time.perf_counter() - t0
        print(f"state: {a.incidents:,} open incidents ({a.templates} core-made templates, {size / a.incidents:,.0f} "
              f"B per record) written to {changelog} in {took:.1f}s ({a.incidents / took:,.0f} records/s)", flush=True)
        cwd = tmp_path / "worker"
        cwd.mkdir()
        used: set[str] = set()
        cases = ["fresh"] + ([] if a.skip_kept else ["kept"])
        for label in cases:
            names = probes(a.incidents, used, tpls)
            used |= set(names)
            r = restart(broker, space, cwd, label, names, a.incidents)
            report(r, a.incidents)
            if a.keep_logs:
                Path(a.keep_logs).mkdir(parents=True, exist_ok=True)
                shutil.copy(r["log"], a.keep_logs)


if __name__ == "__main__":
    main()
