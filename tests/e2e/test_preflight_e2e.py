"""``preflight`` on the real control plane with a restricted identity: a ServiceAccount whose Role
grants what the chart needs except one permission, reached through its own kubeconfig (a token
from the TokenRequest API). The API server's RBAC answers the SelfSubjectAccessReviews."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from kestra_ops.adapters.helm_cli import find_helm, helm_version
from kestra_ops.workflows.deploy.preflight import Permission, required_permissions
from tests.e2e.conftest import CONTEXT
from tests.e2e.support import ROOT

CHART = ROOT / "charts" / "kestra"


def rules(permissions: list[Permission]) -> list[dict]:
    """Role rules granting exactly ``permissions`` (one rule per group and resource)."""
    by_resource: dict[tuple[str, str], list[str]] = {}
    for p in permissions:
        resource = f"{p.resource}/{p.subresource}" if p.subresource else p.resource
        by_resource.setdefault((p.group, resource), []).append(p.verb)
    return [{"apiGroups": [group], "resources": [resource], "verbs": sorted(set(verbs))}
            for (group, resource), verbs in sorted(by_resource.items())]


def restricted_kubeconfig(install, name: str, permissions: list[Permission]) -> Path:
    """ServiceAccount ``name`` bound to a Role granting ``permissions`` in the test namespace;
    a kubeconfig (context k8s-local, as the env expects) with a token minted for it."""
    ns, manager = install.namespace, "e2e-test"
    install.core.create_namespaced_service_account(ns, {"metadata": {"name": name}},
                                                   field_manager=manager)
    from kubernetes import client

    rbac = client.RbacAuthorizationV1Api(install.api)
    rbac.create_namespaced_role(ns, {"metadata": {"name": name}, "rules": rules(permissions)},
                                field_manager=manager)
    rbac.create_namespaced_role_binding(ns, {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]},
        field_manager=manager)
    token = install.core.create_namespaced_service_account_token(
        name, ns, {"spec": {"expirationSeconds": 3600}}).status.token
    admin = yaml.safe_load(install.kubeconfig.read_text())
    context = next(c["context"] for c in admin["contexts"] if c["name"] == CONTEXT)
    cluster = next(c["cluster"] for c in admin["clusters"] if c["name"] == context["cluster"])
    ca = cluster.get("certificate-authority-data") or base64.b64encode(
        Path(cluster["certificate-authority"]).read_bytes()).decode()
    path = install.root / f"kubeconfig-{name}"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": CONTEXT,
        "clusters": [{"name": "e2e", "cluster": {"server": cluster["server"],
                                                 "certificate-authority-data": ca}}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": "e2e", "user": name,
                                                   "namespace": ns}}]}))
    path.chmod(0o600)
    return path


def preflight_json(install) -> tuple[int, dict]:
    result = install.run("preflight", "--env", "dev", "--skip-bucket", "--output", "json")
    assert result.exit_code in (0, 1), f"{result.exit_code}\n{result.stdout}\n{result.stderr}"
    return result.exit_code, json.loads(result.stdout)


def test_exactly_the_permissions_preflight_requires_pass_it_and_deploy(install, monkeypatch):
    needed, unknown = required_permissions(CHART)
    assert unknown == []
    monkeypatch.setenv("KUBECONFIG", str(restricted_kubeconfig(install, "ci-deployer", needed)))
    code, data = preflight_json(install)
    assert code == 0 and data["missing_permissions"] == [], json.dumps(data, indent=1)
    assert next(c for c in data["checks"] if c["name"] == "rbac")["status"] == "pass"
    # enough for the whole deploy as that identity: the lock, helm's --wait, the hook Job
    result = install.run("deploy", "--env", "dev", "--yes", "--skip-bucket", "--timeout", "90s")
    assert result.exit_code == 0, f"{result.stdout}\n{result.stderr}"
    assert [r["status"] for r in install.history()] == ["deployed"]


@pytest.mark.parametrize("left_out,error", [
    (Permission("watch", "services"), 'cannot watch resource "services"'),
    (Permission("list", "replicasets", "apps"),
     "Deployment/{ns}/kestra-standalone not ready. status: Unknown")],
    ids=["watch-services", "list-replicasets"])
def test_helm_wait_needs_what_preflight_requires(install, left_out, error):
    """Why ``watch`` and ReplicaSets are required: the helm binary's own --wait (Helm 4: kstatus)
    fails without them. If a helm release stops needing them, this says so."""
    needed, _ = required_permissions(CHART)
    if helm_version()[0] < 4:
        pytest.skip("Helm 3's --wait polls: the watch is Helm 4's")
    kubeconfig = restricted_kubeconfig(install, "ci-helm", [p for p in needed if p != left_out])
    done = subprocess.run(
        [find_helm(), "upgrade", "kestra", str(CHART), "--install", "--namespace",
         install.namespace, "--values", str(install.root / "values" / "base.yaml"),
         "--values", str(install.root / "values" / "dev.yaml"), "--wait", "--timeout", "5s",
         "--kubeconfig", str(kubeconfig), "--kube-context", CONTEXT],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0
    assert error.format(ns=install.namespace) in done.stderr, done.stderr[-2000:]


@pytest.mark.parametrize("left_out", [Permission("watch", "deployments", "apps"),
                                      Permission("create", "configmaps")],
                         ids=["watch-deployments", "create-configmaps"])
def test_preflight_names_the_one_missing_permission(install, monkeypatch, left_out):
    needed, _ = required_permissions(CHART)
    assert left_out in needed
    granted = [p for p in needed if p != left_out]
    monkeypatch.setenv("KUBECONFIG", str(restricted_kubeconfig(install, "ci-deployer", granted)))
    code, data = preflight_json(install)
    assert code == 1 and data["ok"] is False
    assert data["missing_permissions"] == [left_out.missing(install.namespace)]
    rbac = next(c for c in data["checks"] if c["name"] == "rbac")
    assert rbac["status"] == "fail" and rbac["details"] == data["missing_permissions"]
    # the rest was checked as this identity and passed: the API answered, no release yet
    statuses = {c["name"]: c["status"] for c in data["checks"]}
    assert statuses["api-server"] == "pass" and statuses["release"] == "pass"


def test_an_unusable_api_server_is_named_in_words(install, monkeypatch, tmp_path):
    """The API server's own TLS and a closed port: what happened, in words, with the host (not
    urllib3's MaxRetryError / NewConnectionError)."""
    import socket

    from tests.fakes.minio_health import self_signed

    admin = yaml.safe_load(install.kubeconfig.read_text())
    context = next(c["context"] for c in admin["contexts"] if c["name"] == CONTEXT)
    cluster = next(c["cluster"] for c in admin["clusters"] if c["name"] == context["cluster"])
    server = cluster["server"]
    other_ca, _ = self_signed(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"https://127.0.0.1:{s.getsockname()[1]}"
    cases = {"TLS certificate verify failed: ": (server, {"certificate-authority": other_ca}),
             "connection refused": (closed, {})}
    for words, (url, tls) in cases.items():
        if tls:
            cluster.pop("certificate-authority-data", None)
        cluster.update(tls, server=url)
        path = tmp_path / f"kubeconfig-{len(words)}"
        path.write_text(yaml.safe_dump(admin))
        monkeypatch.setenv("KUBECONFIG", str(path))
        code, data = preflight_json(install)
        api = next(c for c in data["checks"] if c["name"] == "api-server")
        assert code == 1 and api["status"] == "fail"
        assert api["reason"].startswith(f"cannot reach the Kubernetes API at {url}: {words}"), \
            api["reason"]
        assert "Error" not in api["reason"] and "\n" not in api["reason"]
