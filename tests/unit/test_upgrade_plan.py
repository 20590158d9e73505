"""upgrade plan: the running version, the overlay's image.tag edit, the plan offline and as
a CLI command (text and JSON, exit codes)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from kestra_ops.cli import cli
from kestra_ops.errors import InvalidInput, OperationFailed
from kestra_ops.upgrades.version import Version
from kestra_ops.workflows.upgrade import plan as plan_mod
from kestra_ops.workflows.upgrade.overlay import set_image_tag

ROOT = Path(__file__).resolve().parents[2]


def test_the_tag_is_edited_in_place_keeping_comments():
    text = "# top\nimage:\n  repository: kestra/kestra  # mirror\n  tag: 'v1.3.2' # pinned\nx: 1\n"
    out = set_image_tag(text, "v1.3.22")
    assert out == text.replace("'v1.3.2'", '"v1.3.22"')


def test_the_tag_is_added_under_image_or_appended():
    assert set_image_tag("image:\n  pullPolicy: Always\n", "v2.0.8") == \
        'image:\n  tag: "v2.0.8"\n  pullPolicy: Always\n'
    out = set_image_tag("standalone:\n  replicas: 1", "v2.0.8")
    assert out.startswith("standalone:\n  replicas: 1\n") and out.endswith(
        'image:\n  tag: "v2.0.8"\n')
    assert set_image_tag("", "v1.3.22").endswith('image:\n  tag: "v1.3.22"\n')
    assert set_image_tag("image: {repository: r, tag: v1}\n", "v1.3.22") == \
        'image: {repository: r, tag: "v1.3.22"}\n'


@pytest.mark.parametrize("text, tag, message", [
    ("image: {repository: r}\n", "v1.3.22", "not a block mapping"),
    ("- a\n- b\n", "v1.3.22", "not a mapping"),
    ("x: 1\n", "v1;rm -rf", "not an image tag"),
    ("image: kestra/kestra:v1\n", "v1.3.22", "not a block mapping"),
])
def test_what_cannot_be_edited_safely_is_refused(text, tag, message):
    with pytest.raises(InvalidInput, match=message):
        set_image_tag(text, tag)


def test_image_tag_and_target_tag():
    assert plan_mod.image_tag("registry:5000/kestra/kestra:v1.3.2") == "v1.3.2"
    assert plan_mod.image_tag("kestra/kestra@sha256:abc") is None
    assert plan_mod.image_tag("kestra/kestra") is None
    assert plan_mod.target_tag("v1.3.2-no-plugins", Version(1, 3, 22)) == \
        ("v1.3.22-no-plugins", None)
    tag, note = plan_mod.target_tag("v1.3.22-no-plugins", Version(2, 0, 8))
    assert tag == "v2.0.8" and "-no-plugins" in note


class _Client:
    def __init__(self, version=None, fail=False):
        self.version, self.fail = version, fail

    def configs(self):
        if self.fail:
            raise OperationFailed("connection refused")
        return {"version": self.version}


class _Env:
    name, namespace = "prod", "ns"


def test_running_version_prefers_kestra_and_notes_a_disagreement(monkeypatch):
    monkeypatch.setattr(plan_mod, "deployment_image", lambda kube, env: "kestra/kestra:v1.3.2")
    found = plan_mod.running_version(_Env(), kube=object(), client=_Client("1.3.5"))
    assert found.version == Version(1, 3, 5)
    assert "image tag is v1.3.2" in found.notes[0]
    found = plan_mod.running_version(_Env(), kube=object(), client=_Client(fail=True))
    assert found.version == Version(1, 3, 2) and "connection refused" in found.notes[0]
    monkeypatch.setattr(plan_mod, "deployment_image", lambda kube, env: "kestra/kestra:latest")
    with pytest.raises(OperationFailed, match="cannot tell which Kestra version"):
        plan_mod.running_version(_Env(), kube=object(), client=_Client("develop"))


@pytest.fixture
def project(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "values", tmp_path / "values")
    shutil.copy(ROOT / "kestra-ops.yaml", tmp_path / "kestra-ops.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KESTRA_OPS_NO_CACHE", "1")
    for name in ("KESTRA_OPS_CONFIG", "KESTRA_OPS_KESTRA_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_plan_offline_to_2_0_prints_the_path_with_sources(project):
    before = (project / "values" / "production.yaml").read_text()
    result = run("upgrade", "plan", "--env", "production", "--to", "2.0", "--from", "1.3.2")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "step 1: 1.3.2 -> 1.3.22" in out and "step 2: 1.3.22 -> 2.0.8" in out
    assert "IRREVERSIBLE" in out and "/app/kestra migrate run" in out
    assert "https://kestra.io/docs/migration-guide/v2.0.0/database-migrations" in out
    assert '+  tag: "v1.3.22"' in out  # the next step's values change
    assert "staging runs Kestra 1.3.22" in out  # the gate, named
    assert (project / "values" / "production.yaml").read_text() == before  # nothing written


def test_plan_json_has_each_step_and_the_diff(project):
    result = run("upgrade", "plan", "--env", "production", "--to", "1.3.22", "--from", "1.3.2",
                 "--output", "json")
    data = json.loads(result.stdout)
    assert result.exit_code == 0
    assert [s["from"] + ">" + s["to"] for s in data["steps"]] == ["1.3.2>1.3.22"]
    assert data["steps"][0]["reversible"] is False and data["steps"][0]["sources"]
    assert data["image_tag"] == "v1.3.22" and "+  tag:" in data["values_diff"]
    assert data["requires"] == "staging"


def test_an_overlay_another_environment_uses_is_refused(project):
    """Wrong target: staging also lists values/production.yaml as a layer; production's
    image.tag written there would upgrade staging's values too."""
    import yaml

    config = yaml.safe_load((project / "kestra-ops.yaml").read_text())
    config["environments"]["staging"]["values"] = ["values/base.yaml", "values/staging.yaml",
                                                   "values/production.yaml"]
    (project / "kestra-ops.yaml").write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(cli, ["upgrade", "plan", "--env", "production", "--to", "1.3.22",
                                      "--from", "1.3.2"])
    assert result.exit_code == 2, result.output
    assert "values/production.yaml is also a values layer of staging" in result.output
    assert "Traceback" not in result.output


def test_plan_with_flows_that_break(project):
    flows = project / "flows"
    flows.mkdir()
    (flows / "a.yaml").write_text("id: a\nnamespace: company.team\ntasks:\n  - id: each\n"
                                  "    type: io.kestra.plugin.core.flow.ForEach\n"
                                  "    values: [1]\n    tasks: []\n")
    result = run("upgrade", "plan", "--env", "production", "--to", "2.0.8", "--from", "1.3.22",
                 "--flows", str(flows), "--output", "json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    found = [f for r in data["reports"] for f in r["findings"]]
    assert any(f["rule"] == "upgrade/foreach-removed" and f["line"] == 5 for f in found), found


@pytest.mark.parametrize("args, message", [
    (("--to", "9.9.9", "--from", "1.3.2"), "not on a supported line"),
    (("--to", "1.3.22", "--from", "2.0.8"), "never goes back"),
    (("--to", "1.3.22", "--from", "banana"), "not a Kestra version"),
])
def test_bad_targets_are_one_line_exit_2(project, args, message):
    result = run("upgrade", "plan", "--env", "production", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) <= 2  # the error and its hint


def test_already_there(project):
    result = run("upgrade", "plan", "--env", "production", "--to", "1.3.22", "--from", "1.3.22")
    assert result.exit_code == 0 and "already at 1.3.22" in result.stdout


class _OverlayEnv:
    def __init__(self, root, path):
        self.name, self.root, self.values_paths = "dev", root, (path,)


def test_the_overlay_is_never_written_through_a_link_or_over_an_edit(tmp_path):
    from kestra_ops.errors import Conflict
    from kestra_ops.workflows.upgrade import overlay

    real = tmp_path / "shared.yaml"
    real.write_text("image:\n  tag: v1.3.2\n")
    link = tmp_path / "dev.yaml"
    link.symlink_to(real)
    with pytest.raises(InvalidInput, match="symbolic link"):
        overlay.plan_change(_OverlayEnv(tmp_path, link), "v1.3.22")
    path = tmp_path / "prod.yaml"
    path.write_text("image:\n  tag: v1.3.2\n")
    change = overlay.plan_change(_OverlayEnv(tmp_path, path), "v1.3.22")
    path.write_text("image:\n  tag: v1.3.5\n")  # someone's edit after the plan
    with pytest.raises(Conflict, match="changed since the plan"):
        overlay.write(change)
    assert path.read_text() == "image:\n  tag: v1.3.5\n"
    path.write_text(change.before)
    overlay.write(change)
    assert 'tag: "v1.3.22"' in path.read_text()
    path.write_text(path.read_text() + "# edited during the upgrade\n")
    assert overlay.restore(change) is False and "edited during" in path.read_text()


def test_the_values_diff_masks_a_credential_beside_the_tag(tmp_path):
    from kestra_ops.workflows.upgrade import overlay

    path = tmp_path / "prod.yaml"
    path.write_text("kestra:\n  server:\n    basic-auth:\n      password: Hunter2-Secret\n"
                    "image:\n  tag: v1.3.2\n")
    diff = overlay.plan_change(_OverlayEnv(tmp_path, path), "v1.3.22").diff()
    assert '+  tag: "v1.3.22"' in diff and "Hunter2-Secret" not in diff
