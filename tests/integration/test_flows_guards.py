"""Guards of the flows commands that must fail closed (issue 12): the plugin blacklist of an
environment whose list is empty or invalid, and symlinks in a flows directory that point outside
it. Run end to end against the fake Kestra server: nothing is sent for a refused file, nothing is
written for a refused directory."""

from __future__ import annotations

import os

import pytest

from tests.helpers_flows import Project, flow, kestra, project  # noqa: F401

DOCKER = "io.kestra.plugin.docker.Run"
SECRET = "s3cr3t-Value-that-must-not-leave"


def _blacklist(project: Project, *entries: str) -> None:
    body = "".join(f'      - "{e}"\n' for e in entries)
    (project.root / "values.yaml").write_text(
        "kestra:\n  plugins:\n    blacklist:" + ("\n" + body if entries else " []\n"))


def _sent(project: Project) -> bytes:
    return b"".join(r.body for r in project.kestra.calls())


@pytest.mark.parametrize("entries", [("io.kestra.plugin.docker.* ", "io..kestra", "**"), ()],
                         ids=["only-invalid-globs", "empty"])
def test_production_with_an_invalid_or_empty_blacklist_refuses_docker(project, entries):
    _blacklist(project, *entries)
    project.write("d.yaml", flow("d", task_type=DOCKER))
    project.kestra.clear_log()

    check = project.run("flows", "validate", "flows", "--env", "production")
    assert check.exit_code != 0, check.output
    assert "flows/d.yaml:6:11: error flows/blacklisted-type" in check.output
    assert "io.kestra.plugin.docker.*" in check.output
    rule = "kestra/plugin-blacklist-glob" if entries else "kestra/plugin-blacklist-missing"
    assert f"error {rule}" in check.output  # the list itself is an error outside dev

    applied = project.run("flows", "apply", "flows", "--env", "production", "--yes")
    assert applied.exit_code != 0, applied.output
    assert "nothing written" in applied.output
    assert project.writes() == []
    assert project.server_flows() == {}


def test_an_invalid_blacklist_stops_production_even_for_a_clean_flow(project):
    _blacklist(project, "io..kestra")
    project.write("ok.yaml", flow("ok"))
    applied = project.run("flows", "apply", "flows", "--env", "production", "--yes")
    assert applied.exit_code == 1, applied.output
    assert "error kestra/plugin-blacklist-glob" in applied.output
    assert project.writes() == []


def test_the_builtin_minimum_applies_outside_dev_whatever_the_list_says(project):
    _blacklist(project, "io.kestra.plugin.scripts.shell.*")  # valid, but without docker
    project.write("d.yaml", flow("d", task_type=DOCKER))
    result = project.run("flows", "validate", "flows", "--env", "production")
    assert result.exit_code == 1, result.output
    assert "error flows/blacklisted-type" in result.output
    assert "error kestra/plugin-blacklist-docker" in result.output


def test_dev_falls_back_to_the_default_when_no_entry_is_a_valid_glob(project):
    _blacklist(project, "io..kestra")
    project.write("d.yaml", flow("d", task_type=DOCKER))
    result = project.run("flows", "validate", "flows", "--env", "dev")
    assert result.exit_code == 1, result.output
    assert "error flows/blacklisted-type" in result.output
    assert "warning kestra/plugin-blacklist-glob" in result.output  # dev: a warning only


def test_a_symlink_leaving_the_directory_is_not_read_nor_sent(project):
    outside = project.root / "credentials.yaml"
    outside.write_text(flow("leak", extra=f"description: {SECRET}\n"))
    os.symlink(outside, project.flows / "leak.yaml")
    os.symlink("../credentials.yaml", project.flows / "relative.yml")
    (project.root / "elsewhere").mkdir()
    (project.root / "elsewhere" / "x.yaml").write_text(flow("x", extra=f"description: {SECRET}\n"))
    os.symlink(project.root / "elsewhere", project.flows / "linked-dir")
    project.write("ok.yaml", flow("ok"))
    project.kestra.clear_log()

    result = project.run("flows", "validate", "flows", "--env", "production")
    assert result.exit_code == 2, result.output
    for link in ("flows/leak.yaml", "flows/relative.yml", "flows/linked-dir"):
        lines = [line for line in result.output.splitlines() if line.startswith(link + ":")]
        assert len(lines) == 1 and "error flows/symlink" in lines[0], result.output
        assert "outside" in lines[0]
    assert SECRET not in result.output
    assert SECRET.encode() not in _sent(project)

    applied = project.run("flows", "apply", "flows", "--env", "production", "--yes")
    assert applied.exit_code == 2, applied.output
    assert SECRET not in applied.output
    assert SECRET.encode() not in _sent(project)
    assert project.writes() == []


def test_a_symlink_inside_the_directory_is_read(project):
    real = project.write("company.team/real.yaml", flow("real"))
    os.symlink(real, project.flows / "alias-dir")  # a file link with no flow suffix: ignored
    os.symlink("company.team", project.flows / "also")  # a directory link inside: not walked
    os.symlink("real.yaml", project.flows / "company.team" / "again.yaml")
    result = project.run("flows", "validate", "flows")
    # the in-tree link is read (and, being the same flow, is a duplicate)
    assert "flows/company.team/again.yaml" in result.output
    assert "flows/symlink" not in result.output
    assert "error flows/duplicate-flow" in result.output

