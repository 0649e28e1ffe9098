"""`cinerec train / promote / rollback / evaluate / tune / report` end to end on a small world:
real Spark preprocessing, real MLflow (SQLite under a temp data dir), real Kafka (the privacy topic)."""

import json

import pytest

from cinerec.cli.main import main

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("batchcli")
    return root


@pytest.fixture
def env(world, monkeypatch, spark, services, base_settings):
    """(Training reads the privacy topic on Kafka: whom to leave out.)"""
    for key, value in {"CINEREC_SERVICES__DATA_DIR": str(world / "var"),
                       "CINEREC_KAFKA__BOOTSTRAP_SERVERS": base_settings.kafka.bootstrap_servers,
                       "CINEREC_SIMULATOR__USERS": "60", "CINEREC_SIMULATOR__MOVIES": "80",
                       "CINEREC_SIMULATOR__MEAN_RATINGS_PER_USER": "25"}.items():
        monkeypatch.setenv(key, value)
    return world


def out(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_train_promote_refuse_rollback(env, capsys):
    untrained = ["--param", "rank=8", "--param", "iterations=0"]   # the random start: a bad model
    trained = ["--param", "rank=8", "--param", "iterations=5"]
    assert main(["train", *untrained]) == 0                        # on the synthetic world by default
    first = out(capsys)
    assert first["version"] == 1 and first["alias"] == "challenger"
    assert main(["promote"]) == 0                                  # no champion yet: promoted
    assert out(capsys)["champion_now"] == 1

    assert main(["train", *trained]) == 0
    assert out(capsys)["heldout"]["ndcg"] > first["heldout"]["ndcg"]
    assert main(["promote"]) == 0
    assert out(capsys)["champion_now"] == 2

    assert main(["train", *untrained]) == 0
    assert main(["promote"]) == 1
    assert "does not beat champion v2" in capsys.readouterr().err

    assert main(["rollback"]) == 0
    assert out(capsys)["champion_now"] == 1


def test_evaluate_prints_the_documented_json(env, capsys):
    assert main(["evaluate", "--models", "popular,ease,als", "--protocol", "temporal", "--k", "5",
                 "--json"]) == 0
    result = out(capsys)
    assert result["protocol"] == "temporal" and result["k"] == 5
    assert set(result["models"]) == {"popular", "ease", "als"}
    for metrics in result["models"].values():
        assert {"ndcg", "precision", "recall", "map", "coverage", "novelty", "train_seconds"} <= set(metrics)
    assert result["models"]["ease"]["ndcg"] > result["models"]["popular"]["ndcg"]


def test_unknown_models_are_a_clear_error(env, capsys):
    assert main(["evaluate", "--models", "popular,magic"]) == 1
    assert "unknown model(s) magic" in capsys.readouterr().err


def test_tune_logs_every_trial(env, capsys, tmp_path):
    config = tmp_path / "ease.toml"
    config.write_text("[search]\nregularization = [5.0, 50.0]\n")
    assert main(["tune", "--model", "ease", "--config", str(config)]) == 0
    result = out(capsys)
    assert result["trials"] == 2 and result["mlflow_parent_run"]


def test_report_writes_a_self_contained_page(env, capsys, tmp_path):
    page = tmp_path / "report.html"
    assert main(["report", "--models", "popular,itemknn-cosine", "--out", str(page)]) == 0
    assert out(capsys)["report"] == str(page)
    text = page.read_text()
    assert text.count("data:image/png;base64,") == 3
    assert "itemknn-cosine" in text and "popular" in text and "<table>" in text


@pytest.mark.services
def test_index_builds_the_champions_indices(env, capsys, base_settings, fresh_indices, monkeypatch):
    monkeypatch.setenv("CINEREC_ELASTICSEARCH__URL", base_settings.elasticsearch.url)
    assert main(["train", "--param", "rank=8", "--param", "iterations=3"]) == 0
    version = out(capsys)["version"]
    assert main(["promote"]) in (0, 1)     # an earlier test may hold a better champion
    capsys.readouterr()
    assert main(["index", "--alias", "challenger"]) == 0
    report = out(capsys)
    assert report["version"] == version and report["films"]["failed"] == 0
    assert report["aliases"]["films"] == [f"films-v{version}"]
    assert fresh_indices.count(index="films")["count"] == report["films"]["written"] > 0


def test_evaluate_streaming_compares_fold_in_with_a_retrain(env, capsys):
    assert main(["evaluate", "--protocol", "temporal", "--streaming", "--k", "5"]) == 0
    result = out(capsys)
    assert result["streaming"] is True and result["model"] == "als" and result["streamed_ratings"] > 0
    assert result["ndcg_ratio"] == pytest.approx(result["streaming_model"]["ndcg"] / result["retrained_model"]["ndcg"],
                                                 abs=1e-4)
    assert main(["evaluate", "--protocol", "stratified", "--streaming"]) == 1
    assert "use it with --protocol temporal" in capsys.readouterr().err


def test_evaluate_streaming_takes_the_model_s_hyper_parameters(env, capsys):
    assert main(["evaluate", "--protocol", "temporal", "--streaming", "--k", "5",
                 "--param", "rank=6", "--param", "iterations=2"]) == 0
    result = out(capsys)
    assert result["params"]["rank"] == 6 and result["params"]["iterations"] == 2
    assert main(["evaluate", "--protocol", "temporal", "--param", "rank=6"]) == 1
    assert "--param sets the hyper-parameters of the one model --streaming evaluates" in capsys.readouterr().err


def test_benchmarks_of_the_live_loop_say_what_is_missing(env, capsys, monkeypatch):
    monkeypatch.setenv("CINEREC_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
    assert main(["bench", "throughput", "--rates", "100", "--duration", "1"]) == 3
    assert "cinerec services up" in capsys.readouterr().err
