import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from cinerec.ops import services as svc
from cinerec.ops.services import ServiceError, engines
from cinerec.ops.services._process import free_port
from cinerec.platform.elasticsearch import cluster_health

pytestmark = pytest.mark.services


def test_up_reports_both_services_healthy_with_topics(services, base_settings):
    assert services["kafka"]["healthy"] and services["elasticsearch"]["healthy"]
    assert services["topics"] == {"ratings": 3, "ratings.dlq": 3, "users.privacy": 1, "feedback": 3}


def test_up_again_is_idempotent(services, base_settings):
    again = svc.up(base_settings)
    assert again["topics"] == services["topics"]
    assert svc.status(base_settings)["kafka"]["healthy"]


def test_topics_are_created_with_the_configured_partitions(services, base_settings):
    kafka = base_settings.replace(kafka__ratings_topic="six-parts", kafka__dlq_topic="six-parts.dlq",
                                  kafka__privacy_topic="six-parts.privacy", kafka__feedback_topic="six-parts.feedback",
                                  kafka__partitions=6).kafka
    expected = {"six-parts": 6, "six-parts.dlq": 6, "six-parts.privacy": 1, "six-parts.feedback": 6}
    assert svc.ensure_topics(kafka) == expected
    assert svc.ensure_topics(kafka) == expected
    svc.delete_topics(kafka, list(expected))


def test_external_mode_starts_nothing_and_reports_what_is_down(tmp_path, base_settings):
    external = base_settings.replace(
        services__mode="external", services__data_dir=str(tmp_path), services__start_timeout_s=1,
        kafka__bootstrap_servers=f"127.0.0.1:{free_port()}",
        elasticsearch__url=f"http://127.0.0.1:{free_port()}")
    report = svc.status(external)
    assert not report["kafka"]["healthy"] and not report["elasticsearch"]["healthy"]
    with pytest.raises(ServiceError, match="not healthy after 1s"):
        svc.up(external)
    assert not (tmp_path / "kafka").exists() and not (tmp_path / "elasticsearch").exists()


def test_external_mode_accepts_healthy_endpoints(services, base_settings):
    external = base_settings.replace(services__mode="external")
    assert svc.up(external)["kafka"]["healthy"]
    assert svc.down(external)["stopped"] is False


def test_embedded_mode_refuses_endpoints_it_cannot_serve(base_settings):
    with pytest.raises(ServiceError, match="one Kafka host:port"):
        svc.up(base_settings.replace(kafka__bootstrap_servers="a:1,b:2"))


def test_up_without_fetched_engines_says_to_run_make_install(tmp_path, base_settings):
    missing = base_settings.replace(services__data_dir=str(tmp_path), services__engines_dir=str(tmp_path / "none"),
                                    kafka__bootstrap_servers=f"127.0.0.1:{free_port()}")
    with pytest.raises(ServiceError, match="make install"):
        svc.up(missing)


def test_status_reports_each_engine_process_and_its_memory(services, base_settings):
    report = svc.status(base_settings)
    for name in ("kafka", "elasticsearch"):
        assert report[name]["pid"] and report[name]["resident_mib"] > 50
    assert report["elasticsearch"]["version"].startswith("8.19.")


@pytest.mark.skipif(os.geteuid() != 0, reason="Elasticsearch runs as its own user only when we are root")
def test_a_data_dir_its_user_cannot_enter_puts_elasticsearch_where_it_can_and_it_starts_there(base_settings, capsys):
    private = Path(tempfile.mkdtemp(prefix="cinerec-private-"))           # mode 700, as a `mktemp -d` checkout
    settings = base_settings.replace(services__data_dir=str(private / "var"), services__elasticsearch_heap_mb=256,
                                     elasticsearch__url=f"http://127.0.0.1:{free_port()}")
    folder = engines.elasticsearch_dir(settings)
    try:
        assert folder.parent == Path("/var/tmp") and folder.name.startswith("cinerec-elasticsearch-")
        assert engines.elasticsearch_dir(settings) == folder                                      # stable
        assert engines.elasticsearch_dir(base_settings) == \
            Path(base_settings.services.data_dir).resolve() / "elasticsearch"                  # a reachable one stays
        engines.start_elasticsearch(settings)
        assert f"Elasticsearch's data, config and logs are in {folder}, as user 'cinerec'" in capsys.readouterr().err
        deadline = time.monotonic() + settings.services.start_timeout_s
        while not cluster_health(settings.elasticsearch)["healthy"] and time.monotonic() < deadline:
            time.sleep(1)
        assert cluster_health(settings.elasticsearch)["healthy"]
        assert svc.down(settings)["was_running"]["elasticsearch"]                  # down finds it there
    finally:
        svc.down(settings)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(private, ignore_errors=True)
