"""The production compose file is validated here, not run (no Docker engine on these machines)."""

from pathlib import Path

import yaml

from core.settings import load_settings

DEPLOYMENT = Path(__file__).resolve().parent.parent / "deployment"


def compose() -> dict:
    return yaml.safe_load((DEPLOYMENT / "docker-compose.yml").read_text())


def test_compose_runs_the_real_services():
    services = compose()["services"]
    assert {"kafka", "elasticsearch", "kibana", "mlflow", "prometheus", "grafana"} <= set(services)
    assert services["elasticsearch"]["image"].split(":")[-1].startswith("8.")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft


def test_every_cinerec_variable_in_compose_is_a_valid_setting():
    for name, service in compose()["services"].items():
        env = {k: str(v) for k, v in (service.get("environment") or {}).items()
               if k.startswith("CINEREC_")}
        if env:
            settings = load_settings(env=env)
            assert settings.services.mode == "external", name


def test_build_contexts_and_mounted_files_exist():
    for service in compose()["services"].values():
        build = service.get("build")
        if build:
            assert (DEPLOYMENT / build["context"] / build["dockerfile"]).is_file()
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOYMENT / source).is_file(), source


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
    assert services["kibana"]["image"].split(":")[-1] == pinned["elasticsearch.version"]


def test_spark_connector_is_pinned_at_exactly_the_pyspark_version():
    requirements = (DEPLOYMENT.parent / "requirements.txt").read_text()
    pyspark = next(line.split("==")[1].split()[0] for line in requirements.splitlines()
                   if line.startswith("pyspark=="))
    assert engine_versions()["spark.version"] == pyspark
