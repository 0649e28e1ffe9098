"""The `cinerec` command line, run in-process (main) and as a real subprocess (exit codes, stderr)."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from cinerec.cli.main import main

from movielens_fixtures import write


def run(*args, env=None):
    """`cinerec ARGS` as a subprocess with only the given CINEREC_ variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CINEREC_")}
    return subprocess.run([sys.executable, "-m", "cinerec.cli.main", *args], capture_output=True, text=True,
                          env={**clean, **(env or {})}, timeout=120)


@pytest.fixture
def cli_env(settings, monkeypatch):
    """Points the CLI's settings at the test services and this test's topics."""
    env = {"CINEREC_SERVICES__DATA_DIR": str(settings.services.data_dir),
           "CINEREC_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
           "CINEREC_KAFKA__RATINGS_TOPIC": settings.kafka.ratings_topic,
           "CINEREC_KAFKA__DLQ_TOPIC": settings.kafka.dlq_topic,
           "CINEREC_ELASTICSEARCH__URL": settings.elasticsearch.url,
           "CINEREC_SIMULATOR__USERS": "150", "CINEREC_SIMULATOR__MOVIES": "200"}
    for key in [k for k in os.environ if k.startswith("CINEREC_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_config_show_masks_secrets():
    result = run("config", "show", "--json", env={"CINEREC_KAFKA__SASL_PASSWORD": "s3cret"})
    assert result.returncode == 0
    shown = json.loads(result.stdout)
    assert shown["kafka"]["sasl_password"] == "********"
    assert "s3cret" not in result.stdout + result.stderr


def test_a_bad_setting_fails_at_start_with_one_line():
    result = run("config", "show", env={"CINEREC_KAFKA__PARTITIONS": "zero"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "kafka.partitions" in lines[0] and "CINEREC_KAFKA__PARTITIONS" in lines[0]
    assert "Traceback" not in result.stderr


def test_download_without_internet_is_one_clear_line(tmp_path):
    result = run("data", "download", "movielens-small", "--dest", str(tmp_path),
                 "--url", "http://127.0.0.1:9/ml-latest-small.zip")
    assert result.returncode == 1
    assert result.stderr.startswith("cinerec: error: cannot download movielens-small")
    assert len(result.stderr.strip().splitlines()) == 1


def test_data_check_exit_code_follows_errors(tmp_path):
    assert main(["data", "check", str(write("ml-100k", tmp_path / "clean"))]) == 0
    assert main(["data", "check", str(write("ml-100k", tmp_path / "bad", defects=True))]) == 1


def test_data_check_json_report(tmp_path, capsys):
    assert main(["data", "check", "--json", str(write("ml-1m", tmp_path, defects=True))]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["layout"] == "ml-1m" and report["errors"] == 4


def test_data_load_writes_parquet_and_a_manifest(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CINEREC_SERVICES__DATA_DIR", str(tmp_path / "var"))
    assert main(["data", "load", str(write("ml-csv", tmp_path / "ml")), "--name", "tiny"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ratings"] == 9 and summary["layout"] == "ml-csv"
    stored = tmp_path / "var" / "datasets" / "tiny"
    assert len(pd.read_parquet(stored / "ratings.parquet")) == 9
    assert json.loads((stored / "manifest.json").read_text())["fingerprint"] == summary["fingerprint"]


@pytest.mark.services
def test_simulate_then_count_reads_the_events_back(cli_env, capsys):
    assert main(["simulate", "--count", "500", "--rate", "0", "--malformed", "0.1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["sent"] == 500 and summary["malformed"]["total"] == 50
    assert main(["events", "count"]) == 0
    counted = json.loads(capsys.readouterr().out)
    assert counted["total"] == 500 and counted["valid"] == 450
    assert counted["partitions"] == summary["partitions"]


@pytest.mark.services
def test_bench_produce_prints_json_and_cleans_up(cli_env, capsys):
    assert main(["bench", "produce", "--duration", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["benchmark"] == "produce" and result["failed"] == 0
    assert result["acknowledged"] > 0 and result["events_per_s"] > 0


def test_simulate_without_a_broker_is_a_service_error(tmp_path):
    result = run("simulate", "--count", "10", env={
        "CINEREC_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:9", "CINEREC_SERVICES__DATA_DIR": str(tmp_path)})
    assert result.returncode == 3
    assert "Kafka is not reachable" in result.stderr and "cinerec services up" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_simulate_needs_a_stopping_rule(capsys):
    assert main(["simulate", "--rate", "10"]) == 1
    assert "give --duration" in capsys.readouterr().err
