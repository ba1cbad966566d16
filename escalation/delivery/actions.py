"""What an output means to an alerting tool: open (trigger), acknowledge or resolve an alert.

Invariants (DESIGN.md §11, §12): every output of one ``dedup_key`` concerns one alert;
``sla.warning``, ``sla.breached``, ``escalation.triggered`` and ``escalation.repeated`` open or
refresh it, ``escalation.acknowledged`` acknowledges it, ``escalation.resolved`` closes it, and a
``slo.burn_rate`` opens it while its rule fires (``state: firing``) and closes it when it clears.
Any other type has no action (``None``) and is not delivered to alerting tools.
"""

from __future__ import annotations

import hashlib
from typing import Literal

# the core's page/ticket -> on-call severity, reused so the two never disagree
from escalation.core.services.slo_outputs import NOTIFY_SEVERITY

Action = Literal["trigger", "acknowledge", "resolve"]

_ACTIONS: dict[str, Action] = {
    "sla.warning": "trigger", "sla.breached": "trigger",
    "escalation.triggered": "trigger", "escalation.repeated": "trigger",
    "escalation.acknowledged": "acknowledge", "escalation.resolved": "resolve",
}
SEVERITIES = ("critical", "error", "warning", "info")


def action_of(output: dict) -> Action | None:
    type_ = output.get("type")
    if type_ == "slo.burn_rate":
        return "resolve" if output["data"].get("state") == "resolved" else "trigger"
    return _ACTIONS.get(type_)


def severity_of(output: dict) -> str:
    """The on-call severity (one of :data:`SEVERITIES`) of an output; the one place delivery decides it.

    Invariant: always a member of :data:`SEVERITIES`. In order: ``data.notification_severity``
    (``slo.burn_rate`` carries it: the core's own mapping of its rule severity), else
    ``data.severity`` when it already is an on-call severity (SLA outputs), else a burn-rate rule
    severity ``page``/``ticket`` mapped as the core maps it (outputs written before the core added
    ``notification_severity``), else ``info`` (acknowledged/resolved carry none).
    """
    data = output["data"]
    for value in (data.get("notification_severity"), data.get("severity")):
        if value in SEVERITIES:
            return value
    return NOTIFY_SEVERITY.get(data.get("severity"), "info")


def dedup_key_of(output: dict) -> str:
    """The alert key: ``data.dedup_key``, else the output id (an output of its own)."""
    return str(output["data"].get("dedup_key") or output["id"])


def bounded_key(key: str, limit: int = 255) -> str:
    """``key`` if it has at most ``limit`` characters, else its SHA-256 hex (64 characters): the
    same key always maps to the same value, so trigger and resolve still pair up."""
    return key if len(key) <= limit else hashlib.sha256(key.encode()).hexdigest()


def clip(text: str, limit: int) -> str:
    """At most ``limit`` characters; a cut text ends with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary_of(output: dict) -> str:
    data = output["data"]
    summary = data.get("summary")
    if isinstance(summary, str) and summary:
        return summary
    who = data.get("ticket") or data.get("service") or output.get("subject", "")
    by = f" by {data['by']}" if data.get("by") else ""
    return f"{who} {data.get('clock') or data.get('slo') or ''} {output['type']}{by}".replace("  ", " ").strip()


def component_of(output: dict) -> str | None:
    return output["data"].get("service")


def agreement_of(output: dict) -> str:
    """The agreement id: ``data.agreement``, else from the source ``escalation/<id>@<revision>``."""
    agreement = output["data"].get("agreement")
    if agreement:
        return str(agreement)
    return output.get("source", "").removeprefix("escalation/").rsplit("@", 1)[0]


def camel(type_: str) -> str:
    """``sla.breached`` -> ``SlaBreached``, ``slo.burn_rate`` -> ``SloBurnRate``."""
    return "".join(part[:1].upper() + part[1:] for part in type_.replace("_", ".").split("."))
