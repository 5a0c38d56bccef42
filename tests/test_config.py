"""One settings model: defaults = config/pipeline.toml; env overrides file; flags override both."""

from __future__ import annotations

import tomllib

import pytest

from pipeline.config import ConfigError, Settings, load_settings

from .conftest import ROOT


def test_builtin_defaults_equal_the_shipped_file():
    shipped = tomllib.loads((ROOT / "config" / "pipeline.toml").read_text())
    defaults = Settings().model_dump(mode="json")
    from_file = Settings(**shipped).model_dump(mode="json")
    assert defaults == from_file
    # and the file names every key the model has
    assert set(shipped) == set(Settings.model_fields)
    for section in ("dedupe", "enrich", "limits", "serve", "watch"):
        assert set(shipped[section]) == set(type(getattr(Settings(), section)).model_fields)


def test_file_env_flag_precedence(tmp_path, monkeypatch):
    cfg = tmp_path / "my.toml"
    cfg.write_text('batch_size = 7\nworkers = 3\n[dedupe]\ntracking_params = ["a"]\n')
    assert load_settings(cfg).batch_size == 7
    monkeypatch.setenv("PIPELINE_BATCH_SIZE", "8")
    monkeypatch.setenv("PIPELINE_DEDUPE__TRACKING_PARAMS", '["b"]')
    settings = load_settings(cfg)
    assert (settings.batch_size, settings.workers) == (8, 3)
    assert settings.dedupe.tracking_params == ["b"]
    assert load_settings(cfg, batch_size=9).batch_size == 9


def test_config_from_environment_variable(tmp_path, monkeypatch):
    cfg = tmp_path / "env.toml"
    cfg.write_text("batch_size = 11\n")
    monkeypatch.setenv("PIPELINE_CONFIG", str(cfg))
    assert load_settings().batch_size == 11


def test_default_file_in_working_directory(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "pipeline.toml").write_text("batch_size = 12\n")
    assert load_settings().batch_size == 12


def test_relative_paths_resolve_against_the_working_directory(tmp_path):
    settings = load_settings(None, db="out/x.db")
    assert settings.db == tmp_path / "out" / "x.db"


@pytest.mark.parametrize(
    "toml, key",
    [
        ("batch_size = 0\n", "batch_size"),
        ('log_level = "loud"\n', "log_level"),
        ("nonsense = 1\n", "nonsense"),
        ('[dedupe]\ntracking_params = "utm_*"\n', "dedupe.tracking_params"),
        ('[enrich]\nenabled = ["nope"]\n', "enrich"),
    ],
)
def test_bad_values_name_the_key(tmp_path, toml, key):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert f"  {key}:" in str(err.value)


def test_not_toml(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("= =\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cfg)


def test_missing_file():
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings("nope.toml")
