"""Reports over replayed history: SLA compliance per agreement and period, and the comparison of
the engine's verdicts with ServiceNow's own ``made_sla``.

- :func:`build_report` (``compliance``): pure, outputs -> JSON-ready report data;
- :func:`render_markdown`, :func:`render_html` (``render``): the same report as Markdown or as one
  self-contained HTML page with inline SVG charts (``charts``, matplotlib);
- :func:`compare_made_sla` (``made_sla``): agreement rate, confusion matrix, reasons.
"""

from escalation.reports.compliance import (
    AgreementInfo,
    agreement_infos,
    build_report,
    engine_state,
)
from escalation.reports.made_sla import compare_made_sla
from escalation.reports.numbers import percentile
from escalation.reports.render import render_html, render_markdown

SERVICENOW_ATTRIBUTION = (
    "Data: \"Incident management process enriched event log\", Claudio Amaral, Marcelo Fantinato, "
    "Hajo Reijers, Sarajane Peres; UCI Machine Learning Repository, https://doi.org/10.24432/C57S4H; "
    "licensed CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/). This report is derived from it."
)

__all__ = [
    "AgreementInfo", "SERVICENOW_ATTRIBUTION", "agreement_infos", "build_report", "compare_made_sla",
    "engine_state", "percentile", "render_html", "render_markdown",
]
