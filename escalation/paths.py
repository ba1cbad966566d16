"""Where bundled examples live (beside the package in a checkout or editable install)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
EXAMPLE_AGREEMENT = EXAMPLES / "agreements" / "acme-erp.yaml"
EXAMPLE_EVENTS = EXAMPLES / "events" / "acme-erp.jsonl"
SCHEMAS = ROOT / "schemas"
