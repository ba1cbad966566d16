"""Operations of a live worker without a broker: metrics and health over real HTTP on 127.0.0.1,
structured logs, and agreement reload (merge in place, pinned revisions kept, bad sets refused)."""

from __future__ import annotations

import io
import json
import logging
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from escalation.live import observability as obs
from escalation.live.logs import (
    JsonFormatter,
    TextFormatter,
    resolve_format,
    say,
    setup_logging,
)
from escalation.live.reload import plan_reload, reload_registry
from escalation.loader import load_agreements
from escalation.paths import EXAMPLE_AGREEMENT
from tests.helpers import agreement_dict, registry

REFERENCE = EXAMPLE_AGREEMENT.read_text()


def _value(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture
def http():
    server, port = obs.start_http("127.0.0.1", 0)
    yield f"http://127.0.0.1:{port}"
    obs.stop_http(server)


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


# -- metrics and health
def test_metrics_text_counts_calls(http):
    before = _get(http + "/metrics")[2]
    obs.events_in()
    obs.events_in(2)
    obs.outputs_out("sla.warning")
    obs.outputs_out("sla.warning", 2)
    obs.dead_letter()
    obs.set_open_incidents(7)
    obs.set_due_index(5)
    obs.deadline_latency(0.3)
    obs.lag(3, 42)
    code, ctype, text = _get(http + "/metrics")
    assert code == 200 and ctype.startswith("text/plain")
    delta = lambda s: _value(text, s) - _value(before, s)  # noqa: E731 - metrics are process-global
    assert delta("escalation_events_in_total") == 3
    assert delta('escalation_outputs_out_total{type="sla.warning"}') == 3
    assert delta("escalation_dead_letters_total") == 1
    assert _value(text, "escalation_open_incidents") == 7
    assert _value(text, "escalation_due_index") == 5
    assert delta('escalation_deadline_latency_seconds_bucket{le="0.5"}') == 1
    assert delta('escalation_deadline_latency_seconds_bucket{le="0.25"}') == 0
    assert _value(text, 'escalation_consumer_lag{partition="3"}') == 42
    assert "python_gc" not in text  # a dedicated registry: only the engine's series


def test_health_starting_then_ready(http):
    obs.set_ready(False)
    obs.set_assigned(0)
    code, ctype, body = _get(http + "/health")
    assert (code, ctype, json.loads(body)) == (200, "application/json",
                                                {"status": "starting", "ready": False, "partitions_assigned": 0})
    assert _get(http + "/health/ready")[0] == 503  # readiness fails while starting; liveness does not
    obs.set_assigned(4)
    obs.set_ready(True)
    for path in ("/health", "/health/ready"):
        code, _, body = _get(http + path)
        assert code == 200 and json.loads(body) == {"status": "ok", "ready": True, "partitions_assigned": 4}
    assert _get(http + "/nope")[0] == 404
    obs.set_ready(False)


def test_stop_http_frees_the_port():
    server, port = obs.start_http("127.0.0.1", 0)
    obs.stop_http(server)
    obs.stop_http(None)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)


# -- logs
def _record(name: str, level: int, msg: str, **extra) -> logging.LogRecord:
    record = logging.LogRecord(name, level, __file__, 1, msg, (), None)
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_fields_and_extras():
    line = JsonFormatter().format(_record("escalation.run", logging.INFO, "escalation: ready", partitions_assigned=4))
    doc = json.loads(line)
    assert doc["level"] == "INFO" and doc["logger"] == "escalation.run" and doc["msg"] == "escalation: ready"
    assert doc["partitions_assigned"] == 4 and doc["ts"].endswith("Z") and "\n" not in line


def test_json_lines_with_exception_and_odd_values():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("faust", logging.ERROR, __file__, 1, "failed %s", ("x",), sys.exc_info())
    record.path = Path("/tmp/x")
    doc = json.loads(JsonFormatter().format(record))
    assert doc["msg"] == "failed x" and "ValueError: boom" in doc["exc"] and doc["path"] == "/tmp/x"


def test_text_keeps_lifecycle_lines_verbatim():
    fmt = TextFormatter()
    assert fmt.format(_record("escalation.run", logging.INFO, "escalation: ready: 4 partitions assigned")) == \
        "escalation: ready: 4 partitions assigned"
    other = fmt.format(_record("aiokafka", logging.WARNING, "lost connection"))
    assert other.endswith(" WARNING aiokafka: lost connection")


def test_setup_logging_formats_and_levels():
    root, lifecycle = logging.getLogger(), logging.getLogger("escalation.run")
    handlers, level, lifecycle_level = root.handlers[:], root.level, lifecycle.level
    try:
        out = io.StringIO()
        assert setup_logging("auto", "WARNING", out) == "json"  # not a terminal
        say("hello", answer=42)
        logging.getLogger("faust").info("hidden below WARNING")
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        assert [(d["msg"], d["answer"]) for d in lines] == [("escalation: hello", 42)]
        out = io.StringIO()
        setup_logging("text", "INFO", out)
        say("hello")
        assert out.getvalue().splitlines()[0] == "escalation: hello"
        with pytest.raises(ValueError):
            resolve_format("xml")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        lifecycle.setLevel(lifecycle_level)


# -- reload
def _agreements(tmp: Path, *texts: str) -> Path:
    for i, text in enumerate(texts):
        (tmp / f"a{i}.yaml").write_text(text)
    return tmp


def test_plan_reload_cases(tmp_path):
    r3 = load_agreements([EXAMPLE_AGREEMENT])[0]
    r4 = r3.model_copy(update={"revision": 4})
    changed = r3.model_copy(update={"title": "edited in place"})
    # (loaded, found) -> (added, unchanged, kept, problem count)
    cases = [
        ([r3], [r3, r4], ([("acme-erp", 4)], [("acme-erp", 3)], [], 0)),  # a new revision is added
        ([r3], [r4], ([("acme-erp", 4)], [], [("acme-erp", 3)], 0)),  # a file gone: its revision stays loaded
        ([r3], [r3], ([], [("acme-erp", 3)], [], 0)),  # nothing new
        ([r3], [changed], ([], [], [], 1)),  # a loaded revision edited in place is refused
    ]
    for loaded, found, (added, unchanged, kept, problems) in cases:
        plan = plan_reload(loaded, found)
        assert [(a.id, a.revision) for a in plan.added] == added
        assert list(plan.unchanged) == unchanged and list(plan.kept) == kept and len(plan.problems) == problems
    assert "publish the change as revision 4" in plan_reload([r3], [changed]).problems[0]


def test_reload_merges_in_place_and_keeps_pinned_revisions(tmp_path):
    reg = registry()
    same = reg
    r4 = REFERENCE.replace("revision: 3", "revision: 4")
    assert r4 != REFERENCE
    plan = reload_registry(reg, [_agreements(tmp_path, r4)])  # revision 3's file is gone
    assert plan.ok and [(a.id, a.revision) for a in plan.added] == [("acme-erp", 4)]
    assert reg is same and reg.get("acme-erp", 3).revision == 3  # pinned incidents still find r3
    assert reg.latest("acme-erp").revision == 4


def test_reload_with_an_invalid_agreement_keeps_the_old_set(tmp_path):
    reg = registry()
    bad = REFERENCE.replace("revision: 3", "revision: 5").replace("timezone: Europe/Berlin", "timezone: Mars/Olympus")
    plan = reload_registry(reg, [_agreements(tmp_path, REFERENCE.replace("revision: 3", "revision: 4"), bad, "x: [")])
    assert not plan.ok and len(plan.problems) >= 2  # every problem of every file
    assert all(":" in p for p in plan.problems)
    assert [c.revision for c in reg] == [3]


def test_registry_merge_keeps_existing_revision_objects():
    reg = registry()
    before = reg.get("acme-erp", 3)
    from escalation.agreement.models import Agreement

    added = reg.merge([Agreement.model_validate(agreement_dict(revision=3, title="other")),
                       Agreement.model_validate(agreement_dict(revision=6))])
    assert added == [("acme-erp", 6)] and reg.get("acme-erp", 3) is before


def test_demo_compresses_agreement_durations_by_the_speed():
    from escalation.cli.common import load_registry
    from escalation.live.demo import compress_registry
    from escalation.paths import EXAMPLE_AGREEMENT

    [compiled] = list(compress_registry(load_registry([EXAMPLE_AGREEMENT]), 60))
    assert compiled.target("response", "P1").within.total_seconds() == 15
    assert compiled.target("resolution", "P1").within.total_seconds() == 240
    level4 = compiled.agreement.escalation[0].levels[3]
    assert (level4.at.after_breach, level4.repeat.every) == ("120s", "30s")
