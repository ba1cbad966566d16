"""Where the bundled data lives: topics/, schemas/ and examples/.

In a checkout (or an editable install) they sit beside the package, at the repository's top level.
An installed wheel carries the same files as the data packages ``escalation.bundled.*``
(pyproject.toml maps them); then the paths point into site-packages.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bundled() -> Path:
    """The top of the data: the checkout when it has topics/, else the installed data packages."""
    if (ROOT / "topics" / "topics.yaml").is_file():
        return ROOT
    return Path(__file__).resolve().parent / "bundled"


DATA = _bundled()
EXAMPLES = DATA / "examples"
EXAMPLE_AGREEMENT = EXAMPLES / "agreements" / "acme-erp.yaml"
EXAMPLE_EVENTS = EXAMPLES / "events" / "acme-erp.jsonl"
SCHEMAS = DATA / "schemas"
TOPICS_FILE = DATA / "topics" / "topics.yaml"
