"""The Kubernetes adapter against the fake API through a kubeconfig: typed errors per status."""

from __future__ import annotations

import pytest

from kestra_ops.adapters.kube import Kube
from kestra_ops.errors import NotFound, PermissionDenied, Unreachable


def test_version_and_typed_errors(fake_kube):
    kube = Kube(context="fake", namespace="hyperplane-kestra")
    assert kube.server_version().startswith("v1.")
    with pytest.raises(NotFound, match="configmap kestra-config: not found"):
        kube.call("configmap kestra-config", kube.core.read_namespaced_config_map,
                  "kestra-config", "hyperplane-kestra")
    fake_kube.deny("list", "pods")
    with pytest.raises(PermissionDenied, match="pods: forbidden"):
        kube.call("pods", kube.core.list_namespaced_pod, "hyperplane-kestra")


def test_unreachable_api_server(fake_kube):
    kube = Kube(context="fake", namespace="hyperplane-kestra")
    fake_kube.stop()
    with pytest.raises(Unreachable, match="cannot reach the Kubernetes API"):
        kube.server_version()


def test_every_write_names_the_kestra_ops_field_manager(fake_kube):
    """Helm 4 applies server-side: a field written under the client's default manager
    (OpenAPI-Generator) makes its next upgrade fail with a conflict naming that manager."""
    kube = Kube(context="fake", namespace="hyperplane-kestra")
    ns = "hyperplane-kestra"
    body = {"metadata": {"name": "probe"}, "data": {"a": "1"}}
    kube.call("configmap probe", kube.core.create_namespaced_config_map, ns, body)
    live = kube.call("configmap probe", kube.core.read_namespaced_config_map, "probe", ns)
    live.data = {"a": "2"}
    kube.call("configmap probe", kube.core.replace_namespaced_config_map, "probe", ns, live)
    kube.call("configmap probe", kube.core.patch_namespaced_config_map, "probe", ns,
              {"data": {"a": "3"}})
    kube.call("configmap probe", kube.core.patch_namespaced_config_map, "probe", ns,
              {"data": {"a": "4"}}, field_manager="someone-else")
    writes = [r for r in fake_kube.requests if r.method in ("POST", "PUT", "PATCH")
              and "configmaps" in r.path]
    assert [r.query.get("fieldManager") for r in writes] == [
        "kestra-ops", "kestra-ops", "kestra-ops", "someone-else"]
