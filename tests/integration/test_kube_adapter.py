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
