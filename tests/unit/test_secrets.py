"""Secrets never appear in settings errors, printed broker URLs or log lines (DESIGN.md §10)."""

from __future__ import annotations

import io
import logging
import sys
import typing

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from escalation.live.logs import JsonFormatter, TextFormatter
from escalation.cli.live import run_command
from escalation.live.settings import SECRET_FIELDS, LiveSettings, SettingsError, load_settings
from escalation.secrets import MASK, redact, redact_url, remember

PASSWORD = "hunter2-sasl-Pa55"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("ESCALATION_BROKER", "ESCALATION_SECURITY_PROTOCOL", "ESCALATION_SASL_USERNAME",
                 "ESCALATION_SASL_PASSWORD", "ESCALATION_SETTINGS_FILE"):
        monkeypatch.delenv(name, raising=False)


def test_secret_fields_are_all_secretstr_fields():
    typed = {name for name, f in LiveSettings.model_fields.items()
             if SecretStr in (f.annotation, *typing.get_args(f.annotation))}
    assert typed == set(SECRET_FIELDS)


@pytest.mark.parametrize("extra", [
    {},                                           # the model-level check fails: SASL without a user name
    {"sasl_username": "svc", "partitions": 0},    # another field fails
])
def test_settings_error_with_sasl_password_does_not_contain_it(monkeypatch, extra):
    monkeypatch.setenv("ESCALATION_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("ESCALATION_SASL_PASSWORD", PASSWORD)
    with pytest.raises(SettingsError) as caught:
        load_settings(broker="kafka://h:9092", **extra)
    assert PASSWORD not in str(caught.value) and "input_value" not in str(caught.value)


def test_run_command_settings_error_does_not_echo_the_password(monkeypatch):
    monkeypatch.setenv("ESCALATION_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("ESCALATION_SASL_PASSWORD", PASSWORD)
    result = CliRunner().invoke(run_command, ["--broker", "kafka://h:9092", "--log-format", "json"])
    assert result.exit_code == 2 and "SASL needs sasl_username and sasl_password" in result.stderr
    assert PASSWORD not in result.output + result.stderr


def test_settings_repr_hides_the_password():
    settings = LiveSettings(security_protocol="SASL_PLAINTEXT", sasl_username="svc", sasl_password=PASSWORD,
                            broker="kafka://h:9092")
    assert PASSWORD not in repr(settings) + str(settings) + str(settings.model_dump())
    assert settings.aiokafka_security()["sasl_plain_password"] == PASSWORD   # still usable


def test_yaml_settings_file_error_does_not_quote_the_line(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text(f"broker: kafka://h:9092\nsasl_password: [{PASSWORD}\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(settings_file=path)
    assert PASSWORD not in str(caught.value) and "line" in str(caught.value)


@pytest.mark.parametrize(("url", "shown"), [
    ("kafka://user:pa55word@h1:9092,h2:9092", "kafka://***@h1:9092,h2:9092"),
    ("https://user:tok-123@hooks.example.com/x?y=1", "https://***@hooks.example.com/x?y=1"),
    ("https://tok-123@hooks.example.com/x", "https://***@hooks.example.com/x"),
    ("connect to 'kafka://u:p@h:9092' failed", "connect to 'kafka://***@h:9092' failed"),
    ("kafka://h1:9092", "kafka://h1:9092"),
    ("mail me: ops@example.com", "mail me: ops@example.com"),
])
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_broker_url_with_credentials_is_refused_and_printed_redacted():
    with pytest.raises(SettingsError) as caught:
        load_settings(broker="kafka://user:pa55word@h:9092")
    assert "pa55word" not in str(caught.value) and "kafka://***@h:9092" in str(caught.value)
    result = CliRunner().invoke(run_command, ["--broker", "kafka://user:pa55word@h:9092", "--log-format", "json"])
    assert result.exit_code == 2 and "pa55word" not in result.output + result.stderr
    assert "kafka://***@h:9092" in result.stderr


def _record(msg: str, *args, **extra) -> logging.LogRecord:
    record = logging.LogRecord("aiokafka", logging.WARNING, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()], ids=["json", "text"])
def test_log_record_with_a_known_secret_is_redacted(formatter):
    remember(SecretStr(PASSWORD))
    record = _record("auth with %s via https://svc:%s@broker/x", PASSWORD, PASSWORD, config={"pw": PASSWORD})
    try:
        raise RuntimeError(f"login failed for password {PASSWORD!r}")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    line = formatter.format(record)
    assert PASSWORD not in line and MASK in line and "https://***@broker/x" in line


def test_json_escaped_secret_is_redacted_too():
    secret = 'quote"and\\slash'
    remember(secret)
    line = JsonFormatter().format(_record("pw %s", secret))
    assert "quote" not in line and MASK in line


def test_short_values_are_not_remembered():
    remember("ab")
    assert redact("a tab") == "a tab"


def test_setup_logging_handler_redacts(monkeypatch):
    from escalation.live.logs import setup_logging

    stream = io.StringIO()
    remember(PASSWORD)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    setup_logging("text", "INFO", stream=stream)
    try:
        logging.getLogger("faust").warning("credentials %r", {"password": PASSWORD})
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert PASSWORD not in stream.getvalue() and MASK in stream.getvalue()
