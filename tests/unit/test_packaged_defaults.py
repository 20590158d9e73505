"""Which chart and values layers an environment uses: the project's own (beside kestra-ops.yaml,
or in the working directory) override the packaged ones; without them, the packaged ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kestra_ops import packaged
from kestra_ops.errors import PackagedDataMissing
from kestra_ops.settings import load_config

ROOT = Path(__file__).resolve().parents[2]


def _env(start: Path, name: str = "dev", environ: dict | None = None):
    return load_config(start=start, environ={}).environment(name, environ=environ or {})


def test_the_packaged_copy_is_the_repository_s_one_copy():
    """In a checkout (an editable install) there is no kestra_ops/_bundle: the packaged chart
    and layers are the repository's charts/kestra and values/ (a wheel carries them as
    kestra_ops/_bundle, tests/integration/test_package.py)."""
    assert packaged.chart() == ROOT / "charts" / "kestra"
    assert (packaged.chart() / "values.schema.json").is_file()
    assert packaged.values_layers("staging") == (ROOT / "values" / "base.yaml",
                                                 ROOT / "values" / "staging.yaml")
    assert packaged.values_layers("qa") is None and packaged.values_layers("base") is None
    assert packaged.label().startswith("packaged (kestra-ops ")


def test_without_project_files_the_packaged_chart_and_values_are_used(tmp_path):
    env = _env(tmp_path, "production")
    assert (env.chart_source, env.values_source) == ("packaged", "packaged")
    assert env.chart_path == packaged.chart()
    assert env.values_paths == packaged.values_layers("production")
    config = load_config(start=tmp_path, environ={})
    assert config.chart_path == packaged.chart()  # the schema of `values validate FILE`


def test_the_project_s_chart_and_values_override_each_on_its_own(tmp_path):
    (tmp_path / "charts" / "kestra").mkdir(parents=True)
    env = _env(tmp_path)
    assert (env.chart_source, env.chart_path) == ("project", tmp_path / "charts" / "kestra")
    assert env.values_source == "packaged"
    assert load_config(start=tmp_path, environ={}).chart_path == tmp_path / "charts" / "kestra"
    shutil.rmtree(tmp_path / "charts")
    (tmp_path / "values").mkdir()  # a values/ folder: the project's layers, even one missing
    env = _env(tmp_path)
    assert (env.chart_source, env.values_source) == ("packaged", "project")
    assert env.values_paths == (tmp_path / "values" / "base.yaml", tmp_path / "values" / "dev.yaml")


def test_the_project_is_the_folder_of_its_kestra_ops_yaml(tmp_path):
    (tmp_path / "kestra-ops.yaml").write_text("environments:\n  dev: {}\n")
    (tmp_path / "charts" / "kestra").mkdir(parents=True)
    (tmp_path / "values").mkdir()
    (tmp_path / "deep" / "er").mkdir(parents=True)
    env = _env(tmp_path / "deep" / "er")
    assert (env.chart_source, env.values_source) == ("project", "project")
    assert env.chart_path == tmp_path / "charts" / "kestra"
    assert env.values_paths[0] == tmp_path / "values" / "base.yaml"


def test_a_chart_or_layers_a_setting_names_are_never_replaced(tmp_path):
    """Only the built-in defaults fall back: a named chart or list of layers is used as named
    (a missing one is reported where it is used, as before)."""
    (tmp_path / "kestra-ops.yaml").write_text(
        "defaults: {chart: my/chart}\nenvironments:\n  dev: {values: [v/dev.yaml]}\n"
        "  qa: {}\n")
    env = _env(tmp_path)
    assert (env.chart_source, env.chart_path) == ("project", tmp_path / "my" / "chart")
    assert (env.values_source, env.values_paths) == ("project", (tmp_path / "v" / "dev.yaml",))
    assert load_config(start=tmp_path, environ={}).chart_path == tmp_path / "my" / "chart"
    env = _env(tmp_path, "qa", environ={"KESTRA_OPS_CHART": "charts/kestra"})
    assert (env.chart_source, env.chart_path) == ("project", tmp_path / "charts" / "kestra")
    # no packaged layer for qa: its default layers stay the project's (reported missing later)
    assert (env.values_source, env.values_paths) == (
        "project", (tmp_path / "values" / "base.yaml", tmp_path / "values" / "qa.yaml"))


def test_an_install_without_packaged_files_is_one_typed_error(tmp_path, monkeypatch):
    monkeypatch.setattr(packaged, "__file__", str(tmp_path / "kestra_ops" / "packaged.py"))
    packaged.root.cache_clear()
    try:
        env = _env(tmp_path)
        with pytest.raises(PackagedDataMissing, match="ships no chart and values") as err:
            env.chart_path
        assert err.value.exit_code == 2 and "\n" not in str(err.value)
        with pytest.raises(PackagedDataMissing):
            env.values_paths
        assert env.namespace == "hyperplane-kestra"  # what needs no chart still works
    finally:
        packaged.root.cache_clear()
