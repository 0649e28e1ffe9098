"""The production compose file, its images and the release workflow, read and checked here; the stack
itself runs in tests/test_compose_stack.py (podman)."""

import re
from pathlib import Path

import yaml

from cinerec.core.settings import load_settings

DEPLOYMENT = Path(__file__).resolve().parent.parent / "deployment"
ROOT = DEPLOYMENT.parent


class ComposeLoader(yaml.SafeLoader):
    """YAML with the Compose override tags (``!reset``: drop the base file's value)."""


ComposeLoader.add_constructor("!reset", lambda loader, node: None)


def compose(name: str = "docker-compose.yml") -> dict:
    return yaml.load((DEPLOYMENT / name).read_text(), Loader=ComposeLoader)  # noqa: S506 - a SafeLoader


def test_compose_runs_every_service_of_the_system():
    services = compose()["services"]
    assert {"kafka", "elasticsearch", "mlflow", "bootstrap", "api", "stream", "online", "prometheus",
            "alertmanager", "grafana", "kibana"} <= set(services)
    assert services["elasticsearch"]["image"].split(":")[-1].startswith("8.")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    commands = {name: services[name]["command"][0] for name in ("bootstrap", "api", "stream", "online")}
    assert commands == {"bootstrap": "bootstrap", "api": "serve", "stream": "stream", "online": "online"}
    assert services["bootstrap"]["restart"] == "no"                 # one-shot


def test_upstream_images_are_behind_a_profile_and_the_rest_is_built_here():
    for name, service in compose()["services"].items():
        if service.get("profiles") == ["upstream"]:
            continue
        assert service["image"].startswith("${CINEREC_REGISTRY:-localhost}/"), name


def test_every_cinerec_service_is_wired_to_mlflow_and_valid_settings():
    for name, service in compose()["services"].items():
        env = {k: str(v) for k, v in (service.get("environment") or {}).items() if k.startswith("CINEREC_")}
        if env:
            settings = load_settings(env=env)
            assert settings.services.mode == "external", name
            assert settings.mlflow.tracking_uri == "http://mlflow:5000", name


def test_the_local_override_points_every_service_at_loopback():
    base, local = compose()["services"], compose("compose.local.yml")
    for name, service in local["services"].items():
        assert name in base and service["network_mode"] == "host", name
    endpoints = local["x-local-endpoints"]
    assert load_settings(env={k: str(v) for k, v in endpoints.items() if "${" not in str(v)})
    for key in ("CINEREC_KAFKA__BOOTSTRAP_SERVERS", "CINEREC_ELASTICSEARCH__URL", "CINEREC_MLFLOW__TRACKING_URI"):
        assert "127.0.0.1:" in endpoints[key], key


def test_build_contexts_and_mounted_files_exist():
    for service in compose()["services"].values():
        build = service.get("build")
        if build:
            assert (DEPLOYMENT / build["context"] / build["dockerfile"]).is_file()
            if "target" in build:
                dockerfile = (DEPLOYMENT / build["context"] / build["dockerfile"]).read_text()
                assert re.search(rf"^FROM .* AS {build['target']}$", dockerfile, re.M), build
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOYMENT / source).exists(), source


def test_every_image_builds_from_a_base_build_argument():
    for dockerfile in ("Dockerfile", "engines/Dockerfile", "monitoring/Dockerfile"):
        text = (DEPLOYMENT / dockerfile).read_text()
        assert re.search(r"^ARG BASE=\S+", text, re.M) and re.search(r"^FROM \$\{BASE\}", text, re.M), dockerfile
        assert "mvn " not in text, dockerfile                       # the fetched jars, never Maven in a build


def engine_versions() -> dict[str, str]:
    """The versions pinned in deployment/engines/pom.xml (what `make install` fetches)."""
    import xml.etree.ElementTree as ET

    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    properties = ET.parse(DEPLOYMENT / "engines" / "pom.xml").getroot().find("m:properties", ns)
    return {child.tag.split("}")[1]: child.text for child in properties}


def test_production_runs_the_versions_the_embedded_default_runs():
    services, pinned = compose()["services"], engine_versions()
    assert services["kafka"]["image"].split(":")[-1] == pinned["kafka.version"]
    assert services["elasticsearch"]["image"].split(":")[-1] == pinned["elasticsearch.version"]
    assert services["elasticsearch"]["build"]["args"]["ELASTICSEARCH_VERSION"] == pinned["elasticsearch.version"]
    assert f"ARG ELASTICSEARCH_VERSION={pinned['elasticsearch.version']}" in (
        DEPLOYMENT / "engines" / "Dockerfile").read_text()
    assert services["kibana"]["image"].split(":")[-1] == pinned["elasticsearch.version"]


def test_spark_connector_is_pinned_at_exactly_the_pyspark_version():
    requirements = (ROOT / "requirements.txt").read_text()
    pyspark = next(line.split("==")[1].split()[0] for line in requirements.splitlines()
                   if line.startswith("pyspark=="))
    assert engine_versions()["spark.version"] == pyspark


def test_a_version_tag_publishes_every_built_image():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))               # YAML 1.1 reads a bare `on` as true
    assert triggers["push"]["tags"] == ["v*"]
    assert workflow["permissions"]["packages"] == "write"
    script = "\n".join(step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"])
    built = {service["image"].split("/")[-1].split(":")[0] for service in compose()["services"].values()
             if "build" in service or service["image"].startswith("${CINEREC_REGISTRY")}
    assert built and all(re.search(rf"^\s*{image} deployment/", script, re.M) for image in built), built
    assert "ghcr.io/" in script and "--push" in script


def test_the_local_prometheus_scrapes_the_same_jobs_at_the_local_ports():
    production = yaml.safe_load((DEPLOYMENT / "prometheus" / "prometheus.yml").read_text())
    local = yaml.safe_load((DEPLOYMENT / "prometheus" / "prometheus.local.yml").read_text())
    jobs = {job["job_name"]: job["static_configs"][0]["targets"][0] for job in local["scrape_configs"]}
    assert set(jobs) == {job["job_name"] for job in production["scrape_configs"]}
    assert local["rule_files"] == production["rule_files"]
    override = compose("compose.local.yml")
    assert jobs["cinerec-api"] == f"127.0.0.1:{override['x-local-endpoints']['CINEREC_API__PORT']}"
    assert jobs["cinerec-stream"] == f"127.0.0.1:{override['x-local-endpoints']['CINEREC_STREAMING__METRICS_PORT']}"
    assert jobs["cinerec-online"].split(":")[1] in override["services"]["online"]["command"]
    assert jobs["prometheus"] in override["services"]["prometheus"]["command"][0]
    alertmanager = local["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0]
    assert alertmanager in override["services"]["alertmanager"]["command"][0]


def test_grafana_is_provisioned_with_the_datasource_its_dashboard_names():
    import json

    grafana = DEPLOYMENT / "grafana"
    provisioned = yaml.safe_load((grafana / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uids = {source["uid"] for source in provisioned["datasources"]}
    dashboard = json.loads((grafana / "cinerec.json").read_text())
    assert {panel["datasource"]["uid"] for panel in dashboard["panels"] if "datasource" in panel} <= uids
