"""Mapping of a ServiceNow incident audit log onto escalation ticket events.

The defaults of :class:`ServiceNowMapping` are exactly the content of
``examples/mappings/servicenow-default.yaml`` (a unit test keeps the two equal). A mapping file
only needs the keys it changes; everything else keeps its default.

Designed for the "Incident management process enriched event log" (Amaral, Fantinato, Reijers,
Peres; UCI Machine Learning Repository, https://doi.org/10.24432/C57S4H), licensed CC BY 4.0.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

#: Columns of the ServiceNow export, in file order. Mapping ``columns`` renames these.
LOGICAL_COLUMNS: tuple[str, ...] = (
    "number", "incident_state", "active", "reassignment_count", "reopen_count", "sys_mod_count",
    "made_sla", "caller_id", "opened_by", "opened_at", "sys_created_by", "sys_created_at",
    "sys_updated_by", "sys_updated_at", "contact_type", "location", "category", "subcategory",
    "u_symptom", "cmdb_ci", "impact", "urgency", "priority", "assignment_group", "assigned_to",
    "knowledge", "u_priority_confirmation", "notify", "problem_id", "rfc", "vendor", "caused_by",
    "closed_code", "resolved_by", "resolved_at", "closed_at",
)

#: Columns without which a row cannot be turned into events.
REQUIRED_COLUMNS: tuple[str, ...] = (
    "number", "incident_state", "sys_mod_count", "sys_updated_at", "opened_at", "priority",
)

#: Columns whose "TRUE"/"FALSE" values become JSON booleans in event attributes.
BOOLEAN_COLUMNS = frozenset({"active", "made_sla", "knowledge", "u_priority_confirmation"})


class MappingError(ValueError):
    """The mapping file is unreadable or invalid."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ValueSource(_Model):
    """Where a ticket's ``service`` or ``customer`` comes from: a constant, or a column.

    A column value is turned into an identifier (lower case, runs of other characters -> "-",
    "Category 55" -> "category-55"); ``default`` is used when the column's value is missing.
    """

    constant: str | None = None
    column: str | None = None
    default: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "ValueSource":
        if (self.constant is None) == (self.column is None):
            raise ValueError("give exactly one of: constant, column")
        if self.column is not None and self.column not in LOGICAL_COLUMNS:
            raise ValueError(f"unknown column {self.column!r}")
        return self


class StateMapping(_Model):
    """ServiceNow ``incident_state`` values by meaning.

    ``open`` maps each open state to the status sent in ``ticket.status_changed`` (statuses listed
    in an agreement clock's ``pause_when`` pause it). A state in ``resolved`` produces
    ``ticket.resolved``, in ``closed`` ``ticket.closed``, in ``cancelled`` ``ticket.cancelled``.
    """

    open: dict[str, str] = {
        "New": "in_progress",
        "Active": "in_progress",
        "Awaiting User Info": "pending_customer",
        "Awaiting Evidence": "pending_customer",
        "Awaiting Vendor": "pending_vendor",
        "Awaiting Problem": "pending_vendor",
    }
    resolved: list[str] = ["Resolved"]
    closed: list[str] = ["Closed"]
    cancelled: list[str] = ["Canceled", "Cancelled"]

    @model_validator(mode="after")
    def _disjoint(self) -> "StateMapping":
        seen: dict[str, str] = {}
        for kind, names in (("open", list(self.open)), ("resolved", self.resolved),
                            ("closed", self.closed), ("cancelled", self.cancelled)):
            for name in names:
                if name in seen:
                    raise ValueError(f"state {name!r} is listed under both {seen[name]} and {kind}")
                seen[name] = kind
        return self

    def kind_of(self) -> dict[str, str]:
        out = {name: "open" for name in self.open}
        out.update({name: "resolved" for name in self.resolved})
        out.update({name: "closed" for name in self.closed})
        out.update({name: "cancelled" for name in self.cancelled})
        return out


class AcknowledgeRule(_Model):
    """When a ticket counts as acknowledged (first response); see ``servicenow`` module docs.

    The first snapshot whose ``incident_state`` is not in ``unacknowledged_states`` or, with
    ``on_assignee``, that has an ``assigned_to`` value, acknowledges the ticket.
    """

    unacknowledged_states: list[str] = ["New"]
    on_assignee: bool = True


def _column_list(value: list[str]) -> list[str]:
    unknown = [c for c in value if c not in LOGICAL_COLUMNS]
    if unknown:
        raise ValueError(f"unknown column(s): {', '.join(map(repr, unknown))}")
    return value


class ServiceNowMapping(_Model):
    """How columns and values of a ServiceNow incident log become ticket events."""

    columns: dict[str, str] = Field(
        default={}, description="logical column name -> header in the CSV, where they differ")
    missing_values: list[str] = ["?", ""]
    timestamp_format: str = "%d-%m-%Y %H:%M"
    agreement: Annotated[str, Field(min_length=1)] = "servicenow-sample"
    service: ValueSource = ValueSource(constant="servicedesk")
    customer: ValueSource = ValueSource(constant="uci-enterprise")
    priorities: dict[str, str] = {
        "1 - Critical": "P1",
        "2 - High": "P2",
        "3 - Moderate": "P3",
        "4 - Low": "P4",
    }
    states: StateMapping = StateMapping()
    initial_status: str = "in_progress"
    acknowledge: AcknowledgeRule = AcknowledgeRule()
    attributes: list[str] = [
        "impact", "urgency", "contact_type", "category", "subcategory", "u_symptom", "location",
        "assignment_group", "knowledge", "u_priority_confirmation",
    ]
    final_attributes: list[str] = ["made_sla", "closed_code"]
    emit_updates: bool = False

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, value: dict[str, str]) -> dict[str, str]:
        _column_list(list(value))
        return value

    @field_validator("attributes", "final_attributes")
    @classmethod
    def _known_attribute_columns(cls, value: list[str]) -> list[str]:
        return _column_list(value)

    def header_name(self, column: str) -> str:
        return self.columns.get(column, column)


def slug(text: str) -> str:
    """``"Category 55"`` -> ``"category-55"``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def load_mapping(path: str | Path | None) -> ServiceNowMapping:
    """Read a mapping YAML file; ``None`` gives the defaults. Raises :class:`MappingError`."""
    if path is None:
        return ServiceNowMapping()
    path = Path(path)
    try:
        data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    except (OSError, YAMLError) as exc:
        raise MappingError(f"{path}: cannot read mapping: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MappingError(f"{path}: a mapping file is a YAML mapping (key: value)")
    try:
        return ServiceNowMapping.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            lines.append(f"{path}: {where}: {err['msg']}" if where else f"{path}: {err['msg']}")
        raise MappingError("\n".join(lines)) from None
