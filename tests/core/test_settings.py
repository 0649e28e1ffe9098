import dataclasses
from pathlib import Path

import pytest

from cinerec.core.settings import DEFAULT_TOML, SECRET_MASK, SettingsError, describe, load_settings


def test_defaults_come_from_the_toml_file():
    settings = load_settings(env={})
    assert settings.kafka.ratings_topic == "ratings"
    assert settings.kafka.dlq_topic == "ratings.dlq"
    assert settings.services.data_dir == Path("var")


def test_environment_overrides_are_typed():
    settings = load_settings(env={"CINEREC_KAFKA__PARTITIONS": "6",
                                  "CINEREC_SIMULATOR__RATE": "2.5",
                                  "CINEREC_SERVICES__MODE": "external",
                                  "CINEREC_STREAMING__REFOLD_ALL": "yes"})
    assert settings.kafka.partitions == 6
    assert settings.simulator.rate == 2.5
    assert settings.services.mode == "external"
    assert settings.streaming.refold_all is True


@pytest.mark.parametrize("env, words", [
    ({"CINEREC_KAFKA__PARTITIONS": "many"}, ["kafka.partitions", "CINEREC_KAFKA__PARTITIONS",
                                             "whole number"]),
    ({"CINEREC_KAFKA__PARTITIONS": "0"}, ["kafka.partitions", ">= 1"]),
    ({"CINEREC_SERVICES__MODE": "cloud"}, ["services.mode", "'embedded', 'external'"]),
    ({"CINEREC_KAFKA__ACKS": "2"}, ["kafka.acks", "'0', '1', 'all'"]),
    ({"CINEREC_SIMULATOR__RATE": "-1"}, ["simulator.rate", ">= 0"]),
    ({"CINEREC_STREAMING__REFOLD_ALL": "maybe"}, ["streaming.refold_all", "true or false"]),
    ({"CINEREC_KAFKA__PARTISHUNS": "3"}, ["unknown setting", "CINEREC_KAFKA__PARTISHUNS"]),
])
def test_a_bad_value_fails_with_one_line_naming_key_and_allowed_values(env, words):
    with pytest.raises(SettingsError) as err:
        load_settings(env=env)
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_secrets_are_masked_in_the_printable_form_and_never_echoed_in_errors():
    settings = load_settings(env={"CINEREC_ELASTICSEARCH__PASSWORD": "hunter2"})
    assert settings.elasticsearch.password == "hunter2"
    assert settings.as_dict()["elasticsearch"]["password"] == SECRET_MASK
    assert settings.as_dict()["elasticsearch"]["username"] == ""


def test_missing_and_unknown_keys_in_a_settings_file_are_errors(tmp_path):
    text = DEFAULT_TOML.read_text()
    (tmp_path / "missing.toml").write_text(text.replace("partitions = 3\n", ""))
    with pytest.raises(SettingsError, match="missing setting kafka.partitions"):
        load_settings(tmp_path / "missing.toml", env={})
    (tmp_path / "extra.toml").write_text(text + "\n[kafka2]\nx = 1\n")
    with pytest.raises(SettingsError, match=r"unknown settings section \[kafka2\]"):
        load_settings(tmp_path / "extra.toml", env={})


def test_replace_validates_like_any_other_source():
    settings = load_settings(env={})
    assert settings.replace(kafka__partitions=4).kafka.partitions == 4
    with pytest.raises(SettingsError):
        settings.replace(kafka__partitions=0)


def test_every_setting_is_documented():
    rows = describe()
    assert rows and all(help_text for _, _, help_text in rows)
    assert ("kafka.partitions", "CINEREC_KAFKA__PARTITIONS") in [(k, e) for k, e, _ in rows]


def test_settings_are_immutable():
    settings = load_settings(env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.kafka.partitions = 9
