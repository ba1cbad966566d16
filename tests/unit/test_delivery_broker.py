"""``escalation deliver`` and ``escalation receive`` find the embedded broker of ``escalation run``
through ``.escalation/broker`` when no broker is configured (DESIGN.md §14), as send/tail do."""

from __future__ import annotations

import socket

import click
import pytest

from escalation.cli.common import broker_settings
from escalation.edges.brokerfile import write_broker_file

FLAGS = dict(broker=None, topic_prefix=None, app_id=None, profile=None)


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("ESCALATION_BROKER", "ESCALATION_PROFILE", "ESCALATION_SETTINGS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_no_broker_and_no_file_is_a_usage_error_saying_what_to_do(here):
    with pytest.raises(click.UsageError, match="start `escalation run`"):
        broker_settings(FLAGS)


def test_the_broker_file_of_a_running_run_is_used(here):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        write_broker_file(address, here)
        settings = broker_settings(FLAGS)
    assert not settings.embedded and settings.bootstrap_servers() == address


def test_a_configured_broker_wins_over_the_file(here):
    write_broker_file("127.0.0.1:1", here)        # stale: would be refused if it were read
    settings = broker_settings({**FLAGS, "broker": "kafka://127.0.0.1:19092"})
    assert settings.bootstrap_servers() == "127.0.0.1:19092"
