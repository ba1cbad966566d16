"""Fixtures for tests against a real Kafka-protocol broker on 127.0.0.1 (never a mock).

- ``broker`` (session): ``$ESCALATION_TEST_BROKER`` (``host:port``, e.g. started by ``.ci/run``
  with ``python -m escalation.live.broker start``) if set, else an :class:`EmbeddedBroker` started
  for the session and stopped at its end. Either way it has ``.bootstrap`` and ``.url``.
- ``exporter``, ``prometheus``, ``alertmanager`` (session, :mod:`tests.integration.servers`): the
  real servers on 127.0.0.1, stopped by PID at the end; missing binaries fail with what to install.
- ``namespace``: a unique topic prefix and app id per test. Tansu keeps the session timeout a
  group was created with (DESIGN.md §7), so tests never share a group or topic.

Every test collected under this directory is marked ``integration``.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from escalation.live.broker import BrokerAddress, EmbeddedBroker
# Real Prometheus, Alertmanager and a test exporter (session fixtures; DESIGN.md §14).
from tests.integration.servers import alertmanager, exporter, prometheus  # noqa: F401

TEST_BROKER_ENV = "ESCALATION_TEST_BROKER"
_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.resolve().is_relative_to(_HERE):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def broker() -> Iterator[BrokerAddress | EmbeddedBroker]:
    bootstrap = os.environ.get(TEST_BROKER_ENV, "").strip()
    if bootstrap:
        yield BrokerAddress(bootstrap)
        return
    with EmbeddedBroker() as embedded:
        yield embedded


@dataclass(frozen=True)
class Namespace:
    """Names unique to one test: topics ``<prefix><name>``, consumer group / Faust app ``app_id``."""

    tag: str
    prefix: str
    app_id: str


@pytest.fixture
def namespace() -> Namespace:
    tag = uuid.uuid4().hex[:10]
    return Namespace(tag=tag, prefix=f"t-{tag}.", app_id=f"escalation-test-{tag}")
