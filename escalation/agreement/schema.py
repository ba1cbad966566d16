"""JSON Schema of the agreement format, generated from the pydantic models (for editors)."""

from __future__ import annotations

from escalation.agreement.models import Agreement

SCHEMA_ID = "https://escalation.dev/schemas/agreement.schema.json"


def agreement_schema() -> dict:
    schema = Agreement.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}
