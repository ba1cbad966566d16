"""Agreement files: the reference loads unchanged; broken copies report every error with file:line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from escalation.agreement.schema import agreement_schema
from escalation.core.contract.compiled import compile_agreement
from escalation.loader import AgreementError, load_agreements
from escalation.paths import EXAMPLE_AGREEMENT, EXAMPLES, SCHEMAS


def test_reference_agreement_loads_and_compiles():
    [agreement] = load_agreements([EXAMPLE_AGREEMENT])
    compiled = compile_agreement(agreement)
    assert (agreement.id, agreement.revision, agreement.timezone) == ("acme-erp", 3, "Europe/Berlin")
    assert compiled.calendars["business"].business_day.total_seconds() == 10 * 3600
    # P4 resolution 5bd = 50h; P1 resolution thresholds in order of counted time
    assert compiled.target("resolution", "P4").within.total_seconds() == 50 * 3600
    assert [t.key for t in compiled.target("resolution", "P1").thresholds] == [
        "level:p1-ladder:2", "warning:0.75", "breach", "level:p1-ladder:3", "level:p1-ladder:4"]


def test_every_bundled_agreement_validates():
    assert len(load_agreements([EXAMPLES / "agreements"])) >= 1


BROKEN = """\
apiVersion: escalation/v1
kind: Agreement
id: broken
revision: 1
timezone: Europe/Berln
calendars:
  always: {kind: 24x7}
  business: {hours: {mon-fro: "08:00-18:00"}}
priorities: [P1, P2]
clocks:
  response: {starts: opened, stops: acknowledged}
targets:
  - {clock: response, priority: P1, within: 15x, calendar: always}
  - {clock: response, priority: P3, within: 1h, calendar: bussiness}
escalation:
  - id: ladder
    levels:
      - {level: 1, at: {clock: resolution, fraction: 1.0}, notify: [nobody]}
remedies:
  - {id: r, kind: per_breach, clock: response, amount: "x"}
"""


def test_broken_copy_reports_every_error_with_file_line_and_path(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    with pytest.raises(AgreementError) as err:
        load_agreements([path])
    got = [(p.line, p.path) for p in err.value.problems]
    assert got == [
        (5, "timezone"),                               # unknown IANA zone
        (8, "calendars.business.hours"),               # unknown weekday 'fro'
        (13, "targets[0].within"),                     # bad duration 15x
        (14, "targets[1].priority"),                   # P3 not declared
        (14, "targets[1].calendar"),                   # 'bussiness'
        (18, "escalation[0].levels[0].at.clock"),      # no clock 'resolution'
        (18, "escalation[0].levels[0].notify"),        # no target 'nobody'
        (20, "remedies[0].amount"),                    # not a decimal
    ]
    assert str(err.value.problems[4]) == (
        f"{path}:14: targets[1].calendar: unknown calendar 'bussiness' (known: always, business)")


def test_reference_with_typo_names_line_of_the_clause(tmp_path):
    text = EXAMPLE_AGREEMENT.read_text().replace("calendar: business, warn_at: [0.5, 0.9]", "calendar: bussiness, warn_at: [0.5, 0.9]")
    path = tmp_path / "acme.yaml"
    path.write_text(text)
    with pytest.raises(AgreementError) as err:
        load_agreements([path])
    [problem] = err.value.problems
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "bussiness" in l)
    assert (problem.line, problem.path) == (line, "targets[6].calendar")


@pytest.mark.parametrize("text, message", [
    ("a: [1, 2\n", "invalid YAML"),
    ("- just a list\n", "one mapping"),
    ("!!python/object:os.system {}\n", "apiVersion: Field required"),   # a tag builds no Python object
])
def test_unusable_yaml_is_reported_not_executed(tmp_path, text, message):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(AgreementError) as err:
        load_agreements([path])
    assert message in str(err.value)


def test_validate_command_prints_errors_and_exits_1(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    bad = subprocess.run([sys.executable, "-m", "escalation.cli", "validate", str(path)], capture_output=True, text=True)
    good = subprocess.run([sys.executable, "-m", "escalation.cli", "validate", str(EXAMPLE_AGREEMENT)], capture_output=True, text=True)
    assert bad.returncode == 1 and len(bad.stdout.splitlines()) == 8 and bad.stdout.startswith(f"{path}:5: timezone:")
    assert good.returncode == 0 and "acme-erp revision 3" in good.stdout


def test_shipped_json_schema_is_current():
    shipped = json.loads((SCHEMAS / "agreement.schema.json").read_text())
    assert shipped == agreement_schema(), "regenerate with: escalation schema > schemas/agreement.schema.json"


def test_reference_agreement_satisfies_the_json_schema():
    import jsonschema
    from ruamel.yaml import YAML

    data = json.loads(json.dumps(YAML(typ="safe").load(EXAMPLE_AGREEMENT.read_text()), default=str))
    jsonschema.validate(data, agreement_schema())


def test_shipped_topic_schemas_are_current():
    from escalation.live.schemas import topic_schemas

    for name, schema in topic_schemas().items():
        shipped = json.loads((SCHEMAS / "topics" / f"{name}.value.json").read_text())
        assert shipped == json.loads(json.dumps(schema, sort_keys=True)), f"regenerate: python -m escalation.live.schemas ({name})"


def test_compiled_machine_is_inspectable_and_diffable():
    from escalation.agreement.models import Agreement
    from escalation.core.contract.compiled import describe
    from tests.helpers import agreement_dict

    base = describe(compile_agreement(Agreement.model_validate(agreement_dict())))
    assert base["lifecycle"]["states"] == ["open", "acknowledged", "resolved", "closed"]
    assert [t["at"] for t in base["thresholds"]["P1"]["response"]] == ["PT7M30S", "PT12M", "PT15M", "PT15M"]
    changed = agreement_dict(targets=[{"clock": "response", "priority": "P1", "within": "10m", "calendar": "always"}])
    other = describe(compile_agreement(Agreement.model_validate(changed)))
    assert other["thresholds"]["P1"]["response"][0] == {"at": "PT10M", "kind": "breach", "key": "breach", "clause": "targets[0]"}
    assert other["lifecycle"] == base["lifecycle"]
