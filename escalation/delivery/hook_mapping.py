"""Mapping files of ticket-tool webhooks (DESIGN.md §14 "Ticket tools"): which payload field gives
what, and how the tool's values become §3 ticket events.

One YAML file per tool (``examples/mappings/jira.yaml``, ``zendesk.yaml``, ``servicenow-webhook.yaml``
are the defaults ``escalation receive`` loads when no ``--mapping TOOL=FILE`` is given). Fields
are dotted paths into the JSON body (``issue.fields.priority.name``; a number indexes a list:
``issue.fields.components.0.name``).

What a webhook *is* (created, updated, a comment, ...) comes from ``event`` (a path) looked up in
``events``; what changed in an update comes from a change log (``changelog``: Jira's
``changelog.items[]``), from previous values sent beside the current ones (``previous``:
ServiceNow's business rule), or from the webhook kind itself (Zendesk: one trigger per change).

Invariants: a loaded mapping is valid as a whole (unknown keys are errors, every status rule says
what it produces, an opened ticket can always be given an ``agreement`` or a ``customer``);
loading never raises anything but :class:`HookMappingError`, whose lines are ``file: path: message``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

TOOLS = ("jira", "zendesk", "servicenow")
#: the bundled default mapping file of each tool (under examples/mappings/)
DEFAULT_FILES = {"jira": "jira.yaml", "zendesk": "zendesk.yaml", "servicenow": "servicenow-webhook.yaml"}

#: what a webhook is: ``created`` opens the ticket; ``updated`` carries changes (change log or
#: previous values); ``status``/``priority``/``assignee``/``reopened`` say which single thing
#: changed (the current value is in the body); ``comment`` is an update to the customer;
#: ``ignore`` is answered 200 with nothing produced.
Kind = Literal["created", "updated", "status", "priority", "assignee", "reopened", "comment", "ignore"]


class HookMappingError(ValueError):
    """The mapping file is unreadable or invalid; the message is ``file: path: message`` lines."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ValueSource(_Model):
    """A constant, or a payload field (``default`` when the field is missing or empty)."""

    constant: str | None = None
    field: str | None = None
    default: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "ValueSource":
        if (self.constant is None) == (self.field is None):
            raise ValueError("give exactly one of: constant, field")
        return self


class StatusRule(_Model):
    """What reaching one tool status means, in this order: ``acknowledge`` (``ticket.acknowledged``,
    the first response), ``status`` (``ticket.status_changed`` with it; a clock's ``pause_when``
    lists these), ``event`` (``ticket.resolved``/``closed``/``cancelled``). Leaving a status whose
    ``event`` is ``resolved`` for one without an ``event`` is a ``ticket.reopened`` first."""

    acknowledge: bool = False
    status: str | None = Field(default=None, min_length=1)
    event: Literal["resolved", "closed", "cancelled"] | None = None

    @model_validator(mode="after")
    def _says_something(self) -> "StatusRule":
        if not self.acknowledge and self.status is None and self.event is None:
            raise ValueError("a status rule needs at least one of: acknowledge, status, event")
        return self


class Changelog(_Model):
    """A change log in the body (Jira): a list of items, each naming a field with old and new values."""

    items: str = "changelog.items"
    field: str = "field"
    before: str = "fromString"
    after: str = "toString"
    #: the change log's name of each field we follow
    names: dict[Literal["status", "priority", "assignee"], str] = {
        "status": "status", "priority": "priority", "assignee": "assignee"}


class HookMapping(_Model):
    """How one tool's webhook bodies become §3 ticket events."""

    tool: Literal["jira", "zendesk", "servicenow"]
    ticket: str
    time: str = Field(description="path of the change's time: RFC 3339, epoch seconds or milliseconds, "
                                   "or a naive 'YYYY-MM-DD HH:MM:SS' read in `timezone`")
    timezone: str = "UTC"
    change_id: str | None = Field(default=None, description="path of the tool's id of this change")
    event: str = Field(description="path of the webhook's kind (the tool's event name)")
    events: dict[str, Kind]
    priority: str
    priorities: dict[str, str]
    status: str
    statuses: dict[str, StatusRule]
    initial_status: str = "in_progress"
    service: ValueSource
    agreement: ValueSource | None = None
    customer: ValueSource | None = None
    summary: str | None = None
    assignee: str | None = None
    group: str | None = None
    comment: str | None = Field(default=None, description="path that is set (an id, or true) when the "
                                                          "webhook adds a comment")
    public: str | None = Field(default=None, description="path of the comment's visibility (a boolean); "
                                                         "missing: public")
    changelog: Changelog | None = None
    previous: dict[Literal["status", "priority", "assignee"], str] = {}

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _agreement_or_customer(self) -> "HookMapping":
        # ticket.opened needs one of them (DESIGN.md §3); refuse the mapping, not every webhook
        if self.agreement is None and self.customer is None:
            raise ValueError("give agreement or customer (or both)")
        return self


def _errors(path: Path, err: ValidationError) -> str:
    lines = []
    for item in err.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in item["loc"])
        msg = item["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {where}: {msg}" if where else f"{path}: {msg}")
    return "\n".join(lines)


def load_hook_mapping(path: str | Path) -> HookMapping:
    """Read and validate one mapping file; :class:`HookMappingError` for anything wrong with it."""
    path = Path(path)
    try:
        data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YAMLError) as exc:
        raise HookMappingError(f"{path}: cannot read mapping: {exc}") from None
    if not isinstance(data, dict):
        raise HookMappingError(f"{path}: a mapping file is a YAML mapping (key: value)")
    try:
        return HookMapping.model_validate(data)
    except ValidationError as exc:
        raise HookMappingError(_errors(path, exc)) from None


def default_mapping_path(tool: str) -> Path:
    from escalation.paths import EXAMPLES

    return EXAMPLES / "mappings" / DEFAULT_FILES[tool]


def load_hook_mappings(files: dict[str, str]) -> dict[str, HookMapping]:
    """Every tool's mapping: the given file, else the bundled default. A file's ``tool`` must be
    the tool it is given for (a Jira mapping on the Zendesk route would map nothing sensibly)."""
    out = {}
    for tool in TOOLS:
        path = Path(files[tool]) if tool in files else default_mapping_path(tool)
        mapping = load_hook_mapping(path)
        if mapping.tool != tool:
            raise HookMappingError(f"{path}: tool: this is a {mapping.tool} mapping, given for {tool}")
        out[tool] = mapping
    return out
