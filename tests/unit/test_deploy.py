"""deploy/ is not exercised by CI (no container engine here): these checks keep it parseable and
consistent with the code it configures (probe paths, settings names, the agreements it ships)."""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML

from escalation.live.settings import LiveSettings
from escalation.loader import parse_agreement
from escalation.paths import EXAMPLE_AGREEMENT

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _docs(path: Path) -> list:
    return [d for d in YAML(typ="safe").load_all(path.read_text()) if d is not None]


def _manifests() -> dict[str, dict]:
    return {d["kind"]: d for f in sorted((DEPLOY / "k8s").glob("*.yaml")) for d in _docs(f) if "kind" in d}


def test_every_deploy_yaml_parses():
    files = sorted(DEPLOY.rglob("*.yaml")) + sorted(DEPLOY.rglob("*.yml"))
    assert len(files) >= 8
    for f in files:
        assert _docs(f), f"{f} is empty"


def test_kubernetes_manifests_have_what_the_readme_says():
    kinds = _manifests()
    assert {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "Job", "Kustomization"} <= set(kinds)
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    worker = pod["containers"][0]
    assert kinds["Deployment"]["spec"]["replicas"] >= 2 and pod["securityContext"]["runAsNonRoot"]
    assert worker["livenessProbe"]["httpGet"]["path"] == "/health"
    assert worker["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert kinds["Service"]["spec"]["ports"][0]["port"] == 9464
    listed = set(_docs(DEPLOY / "k8s" / "kustomization.yaml")[0]["resources"])
    assert listed == {f.name for f in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}


def test_settings_configmaps_use_real_setting_names():
    envs = [d["data"] for f in (DEPLOY / "k8s").glob("configmap-settings*.yaml") for d in _docs(f)]
    compose = _docs(DEPLOY / "compose.yaml")[0]["services"]
    envs += [s.get("environment", {}) for s in compose.values() if s.get("image", "").startswith("escalation")]
    fields = {f"ESCALATION_{name.upper()}" for name in LiveSettings.model_fields}
    for env in envs:
        assert {k for k in env if k.startswith("ESCALATION_")} <= fields, env


def test_agreements_configmap_is_the_example_and_valid():
    data = next(d for d in _docs(DEPLOY / "k8s" / "configmap-agreements.yaml"))["data"]
    assert data["acme-erp.yaml"] == EXAMPLE_AGREEMENT.read_text()
    parse_agreement(data["acme-erp.yaml"], "configmap-agreements.yaml")


def test_compose_runs_kafka_in_kraft_mode_and_a_worker():
    services = _docs(DEPLOY / "compose.yaml")[0]["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka") and "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert services["topics"]["entrypoint"][:2] == ["escalation", "topics"]
    assert services["escalation"]["environment"]["ESCALATION_BROKER"].startswith("kafka://")
    for service in services.values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), "publish on loopback only"


def test_dockerfile_runs_as_non_root():
    text = (DEPLOY / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text and "pip install ." in text
    assert "\nUSER 10001" in text and 'ENTRYPOINT ["escalation", "run"' in text


def test_the_wheel_carries_every_bundled_data_file(tmp_path):
    """A wheel-only install (the container image) finds topics/, schemas/ and examples/ under
    escalation/bundled/ (escalation.paths falls back to it outside a checkout)."""
    import subprocess
    import sys
    import zipfile

    from escalation.paths import ROOT

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("escalation-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    data = [p for d in ("topics", "schemas", "examples") for p in (ROOT / d).rglob("*") if p.is_file()]
    assert data
    missing = [str(p.relative_to(ROOT)) for p in data
               if f"escalation/bundled/{p.relative_to(ROOT).as_posix()}" not in names]
    assert not missing, f"not in the wheel: {missing}"
