"""kestra-ops init (issue 13, item 2): a deployment repository that plans, validates and lints
at once; all or nothing; never over a file without --force, never through a symlink."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.helpers_values import REPO_ROOT, all_output, assert_no_traceback, run_cli

FILES = {"kestra-ops.yaml", "values/base.yaml", "values/dev.yaml", "values/staging.yaml",
         "values/production.yaml", "flows/company.team/hello.yaml",
         ".github/workflows/kestra-ops.yml", ".gitlab-ci.yml", ".pre-commit-config.yaml"}


@pytest.fixture(autouse=True)
def clean(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("KESTRA_OPS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KESTRA_OPS_NO_CACHE", "1")
    monkeypatch.chdir(tmp_path)


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def init(*args: str):
    result = run_cli("init", *args)
    assert_no_traceback(result)
    return result


def test_plan_validate_and_flows_pass_right_after_init(tmp_path, monkeypatch):
    result = init("demo")
    assert result.exit_code == 0, all_output(result)
    assert set(tree(tmp_path / "demo")) == FILES
    assert "next: cd demo && kestra-ops plan --env dev" in result.stdout
    monkeypatch.chdir(tmp_path / "demo")
    for args in (["plan", "--env", "dev"], ["values", "validate", "values/production.yaml"],
                 ["values", "validate", "--env", "staging"], ["flows", "validate", "flows"]):
        run = run_cli(*args)
        assert_no_traceback(run)
        assert run.exit_code == 0, (args, all_output(run))
    assert "chart: packaged" in run_cli("plan", "--env", "dev").stdout


def test_the_files_say_what_a_team_needs(tmp_path):
    init("demo", "--env", "dev,production")
    root = tmp_path / "demo"
    config = yaml.safe_load((root / "kestra-ops.yaml").read_text())
    assert list(config["environments"]) == ["dev", "production"]
    assert all("context" not in e for e in config["environments"].values())  # the current one
    github = yaml.safe_load((root / ".github/workflows/kestra-ops.yml").read_text())
    steps = github["jobs"]["validate"]["steps"]
    assert any("-o sarif" in s.get("run", "") for s in steps)
    assert any(s.get("uses", "").startswith("github/codeql-action/upload-sarif") for s in steps)
    gitlab = yaml.safe_load((root / ".gitlab-ci.yml").read_text())
    assert gitlab["kestra-ops-validate"]["artifacts"]["reports"]["junit"]
    hooks = {h["id"] for h in yaml.safe_load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text())}
    used = {h["id"] for r in yaml.safe_load((root / ".pre-commit-config.yaml").read_text())["repos"]
            for h in r["hooks"]}
    assert used and used <= hooks
    assert (root / "values/base.yaml").read_text() == (REPO_ROOT / "values/base.yaml").read_text()


def test_other_environments_get_their_own_bucket_and_plan(tmp_path, monkeypatch):
    assert init("demo", "--env", "qa,prod-eu").exit_code == 0
    root = tmp_path / "demo"
    assert "bucket: kestra-qa" in (root / "values/qa.yaml").read_text()
    monkeypatch.chdir(root)
    for env in ("qa", "prod-eu"):
        run = run_cli("plan", "--env", env)
        assert run.exit_code == 0, all_output(run)


def test_nothing_is_overwritten_without_force(tmp_path):
    init("demo")
    root = tmp_path / "demo"
    (root / "values/dev.yaml").write_text("# mine\n")
    before = tree(root)
    again = init("demo")
    assert again.exit_code == 2 and "nothing was written" in all_output(again)
    assert "values/dev.yaml" in all_output(again) and "--force" in all_output(again)
    assert tree(root) == before
    forced = init("demo", "--force")
    assert forced.exit_code == 0 and "replaced values/dev.yaml" in forced.stdout
    assert (root / "values/dev.yaml").read_text() != "# mine\n"


@pytest.mark.parametrize("plant", ["file", "folder"])
def test_a_symlink_is_never_written_through_even_with_force(tmp_path, plant):
    root, outside = tmp_path / "demo", tmp_path / "outside"
    outside.mkdir()
    (root / "values").mkdir(parents=True)
    if plant == "file":
        (outside / "secret").write_text("keep\n")
        (root / "values" / "dev.yaml").symlink_to(outside / "secret")
    else:
        (root / "flows").symlink_to(outside)
    result = init("demo", "--force")
    assert result.exit_code == 2 and "nothing was written" in all_output(result)
    assert tree(outside) == ({"secret": b"keep\n"} if plant == "file" else {})
    assert not (root / "kestra-ops.yaml").exists()


def test_an_interrupted_init_leaves_nothing_behind(tmp_path, monkeypatch):
    from kestra_ops import fileio

    root = tmp_path / "demo"
    root.mkdir()
    (root / "kestra-ops.yaml").write_text("# mine\n")
    real, calls = fileio.write_atomic, []

    def interrupted(path, text, **kw):
        calls.append(path)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(path, text, **kw)

    monkeypatch.setattr(fileio, "write_atomic", interrupted)
    result = init("demo", "--force")
    assert result.exit_code == 130
    assert tree(root) == {"kestra-ops.yaml": b"# mine\n"}  # put back, the rest removed


@pytest.mark.parametrize("envs", ["Bad", "", "dev,dev", "a_b", "-x"])
def test_bad_environment_names_are_exit_2(envs):
    result = init("demo", "--env", envs)
    assert result.exit_code == 2, all_output(result)
    assert not Path("demo").exists() or not any(Path("demo").iterdir())


def test_force_never_reads_a_huge_file_into_memory(tmp_path, monkeypatch):
    from kestra_ops.workflows import scaffold

    monkeypatch.setattr(scaffold, "MAX_REPLACED", 1024)
    init("demo")
    root = tmp_path / "demo"
    (root / "values/dev.yaml").write_text("#" * 2048)
    before = tree(root)
    result = init("demo", "--force")
    assert result.exit_code == 2 and "not replaced" in all_output(result)
    assert tree(root) == before
