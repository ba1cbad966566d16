"""JSON Schemas of topic values, generated from the event models (``topics/topics.yaml`` refers
to them). ``python -m escalation.live.schemas`` rewrites ``schemas/topics/``; a unit test fails
when the shipped files are stale."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from escalation.core.events import AgreementTerminated, MetricObserved, TicketEvent
from escalation.core.outputs import OUTPUT_TOPICS
from escalation.paths import SCHEMAS

OUTPUT_TYPES = {topic: [t for t, where in OUTPUT_TOPICS.items() if where == topic]
                for topic in ("notifications", "remedies", "timeline")}


def _cloudevent(types: list[str]) -> type[BaseModel]:
    class CloudEvent(BaseModel):
        """A CloudEvents 1.0 structured-mode event (DESIGN.md §4)."""

        model_config = ConfigDict(extra="allow")
        specversion: Literal["1.0"]
        id: str
        source: str
        type: Literal[tuple(types)]  # type: ignore[valid-type]
        subject: str
        time: str
        datacontenttype: Literal["application/json"]
        data: dict[str, Any]

    return CloudEvent


class DeadLetter(BaseModel):
    reason: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    original: str | None = None


class Tick(BaseModel):
    tick: str = Field(description="RFC 3339 instant: wall clock minus the grace")
    after: dict[str, int] | None = Field(None, description=(
        "next offset to apply per input topic of the partition when the tick was made: records "
        "below these are applied before the tick (live ticks; absent on manual ones)"))


# The delivery log (DESIGN.md §12; written by escalation.delivery.log.delivery_record).
_DELIVERY_RECORD = {
    "type": "object", "description": "the final result of delivering one output to one notification target",
    "required": ["type", "key", "output", "target", "kind", "attempts", "status", "latency", "time"],
    "properties": {
        "type": {"enum": ["delivery.succeeded", "delivery.failed"]},
        "key": {"type": "string", "description": "<output id>/<target name> (the record key)"},
        "output": {"type": "string"}, "output_type": {"type": "string"}, "output_time": {"type": "string"},
        "action": {"enum": ["trigger", "acknowledge", "resolve", None]}, "dedup_key": {"type": "string"},
        "agreement": {"type": "string"}, "target": {"type": "string"}, "kind": {"type": "string"},
        "attempts": {"type": "integer", "minimum": 0},
        "status": {"type": ["integer", "null"], "description": "last HTTP status or SMTP code; null: none"},
        "latency": {"type": "number", "description": "seconds from the output's time to accepted"},
        "error": {"type": ["string", "null"]}, "time": {"type": "string"},
        "alerts": {"type": "array", "description": "alertmanager: the dedup_key's open alerts afterwards"},
    },
}


def topic_schemas() -> dict[str, dict]:
    schemas = {
        "tickets": TypeAdapter(Annotated[Union[TicketEvent, AgreementTerminated], Field(discriminator="type")]).json_schema(),
        "metrics": MetricObserved.model_json_schema(),
        "deadletter": DeadLetter.model_json_schema(),
        "ticks": Tick.model_json_schema(),
        "desk": {"type": "object", "description": "internal: a penalty or credit owed before caps, a partition's "
                                                  "report figures, or a partition's clock mark",
                 "required": ["kind", "src"],
                 "properties": {"kind": {"enum": ["penalty", "credit", "partial", "mark"]},
                                "src": {"type": "integer", "minimum": 0}}},
        "deliveries": _DELIVERY_RECORD,
    }
    for topic, types in OUTPUT_TYPES.items():
        schemas[topic] = _cloudevent(types).model_json_schema()
    return schemas


def write() -> None:
    folder = SCHEMAS / "topics"
    folder.mkdir(parents=True, exist_ok=True)
    for name, schema in topic_schemas().items():
        (folder / f"{name}.value.json").write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    write()
