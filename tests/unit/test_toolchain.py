"""doctor --local (issue 13, item 5): helm's version, pg_dump/pg_restore against the server's
major, the kubeconfig and context; each an item with its fix; exit 1 when one fails."""

from __future__ import annotations

import json
import os
import stat

import pytest

from kestra_ops.results import FAIL, PASS, WARN
from kestra_ops.workflows import toolchain
from tests.helpers_values import all_output, assert_no_traceback, run_cli

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: kind-lab, context: {cluster: c, user: u}}, {name: other, context: {cluster: c, user: u}}]
current-context: kind-lab
"""


def fake_helm(tmp_path, version: str) -> str:
    path = tmp_path / f"helm-{version}"
    path.write_text(f"#!/bin/sh\necho v{version}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture(autouse=True)
def clean(monkeypatch, tmp_path):
    from kestra_ops.adapters.helm_cli import helm_version

    helm_version.cache_clear()
    for name in list(os.environ):
        if name.startswith("KESTRA_OPS_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nowhere"))
    yield
    helm_version.cache_clear()


@pytest.mark.parametrize("version, status", [("4.1.4", PASS), ("3.8.0", PASS), ("3.7.2", FAIL)])
def test_helm_must_be_3_8_or_newer(tmp_path, version, status):
    item = toolchain.helm_item(fake_helm(tmp_path, version))
    assert item.status == status and version in item.reason, item
    if status == FAIL:
        assert "older than 3.8" in item.reason and "3.8+" in item.fix


def test_no_helm_is_a_failure_with_the_way_to_get_one(tmp_path):
    item = toolchain.helm_item(str(tmp_path / "no-helm"))
    assert item.status == FAIL and "helm.sh" in item.fix


@pytest.mark.parametrize("client, server, status", [
    ((15, 4), 15, PASS), ((16, 1), 15, PASS), ((14, 9), 15, FAIL), ((15, 4), None, PASS)])
def test_pg_tools_against_the_servers_major(monkeypatch, client, server, status):
    from kestra_ops.adapters import postgres

    monkeypatch.setattr(postgres, "installed", lambda name: {f"/usr/bin/{name}": client})
    items = toolchain.pg_items(server, "")
    assert [i.id for i in items] == ["pg_dump", "pg_restore"]
    assert {i.status for i in items} == {status}, items
    if status == FAIL:
        assert f"postgresql-client-{server}" in items[0].fix
    if server is None:
        assert "server version not checked" in items[0].reason


def test_missing_pg_tools_are_a_warning(monkeypatch):
    from kestra_ops.adapters import postgres

    monkeypatch.setattr(postgres, "installed", lambda name: {})
    assert {i.status for i in toolchain.pg_items(None, "")} == {WARN}


def test_the_kubeconfig_and_its_current_context_are_named(tmp_path, monkeypatch):
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(path))
    item = toolchain.kubeconfig_item(None, None)
    assert item.status == PASS and item.reason == f"{path}, context kind-lab"
    assert toolchain.kubeconfig_item("other", None).reason.endswith("context other")
    missing = toolchain.kubeconfig_item("nosuch", None)
    assert missing.status == FAIL and "nosuch" in missing.reason


def test_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("KESTRA_OPS_HELM", fake_helm(tmp_path, "3.7.0"))
    result = run_cli("doctor", "--local", "-o", "json")
    assert_no_traceback(result)
    assert result.exit_code == 1, all_output(result)
    data = json.loads(result.stdout)
    by_id = {t["id"]: t for t in data["tools"]}
    assert by_id["helm"]["status"] == "fail" and by_id["kubeconfig"]["status"] == "fail"
    assert data["message"].startswith("doctor --local: FAILED: helm, kubeconfig")


def test_doctor_without_env_or_local_is_a_usage_error():
    result = run_cli("doctor")
    assert result.exit_code == 2 and "--local" in all_output(result)


def test_the_kube_flags_choose_the_kubeconfig_and_context_without_env(tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    result = run_cli("doctor", "--local", "--kubeconfig", str(path), "--kube-context", "other",
                     "-o", "json")
    assert_no_traceback(result)
    by_id = {t["id"]: t for t in json.loads(result.stdout)["tools"]}
    assert by_id["kubeconfig"]["status"] == "pass"
    assert by_id["kubeconfig"]["reason"] == f"{path}, context other"
