"""doctor never says "no problems found" about what it could not look at (issue 12, item 14):
with the cluster or the release unreadable, the verdict names what was not checked and the exit
code is 1, in every format."""

from __future__ import annotations

import json

from tests.helpers_checks import install  # noqa: F401
from tests.helpers_net import unreachable_kubeconfig


def test_an_unreachable_cluster_is_not_checked_not_healthy(install, monkeypatch, tmp_path):
    monkeypatch.setenv("KESTRA_OPS_KUBECONFIG", unreachable_kubeconfig(tmp_path / "gone.yaml"))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "gone.yaml"))
    result = install.run("--output", "json", command="doctor")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["exit_code"] == 1
    assert {"pods", "configmap", "rbac"} <= set(data["not_checked"]), data["not_checked"]
    assert "no problems found" not in data["message"]
    assert "not checked" in data["message"]
    assert data["status"] != "pass"

    text = install.run(command="doctor")
    assert text.exit_code == 1, text.output
    last = text.output.rstrip().splitlines()[-1]
    assert last.startswith("doctor dev: not checked: ") and "pods" in last, last
    assert "no problems found" not in text.output
    assert "Traceback" not in text.output


def test_a_release_that_cannot_be_read_is_not_checked(install, monkeypatch):
    """helm cannot run: the release check did not run, so the verdict is not a clean one."""
    monkeypatch.setenv("KESTRA_OPS_HELM", "/nonexistent/helm")
    result = install.run("--output", "json", command="doctor")
    data = json.loads(result.stdout)
    assert "release" in data["not_checked"], data["not_checked"]
    assert result.exit_code == 1 and "no problems found" not in data["message"]
    assert "release" in data["message"]
