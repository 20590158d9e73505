"""The namespace rules of a recovery (issue 14): only a new or empty namespace is used (Secrets
an operator made first are allowed), our state is kept in a ConfigMap of it, and a namespace that
holds a workload, a Helm release record or another ConfigMap is reported as in use."""

from __future__ import annotations

import pytest

from kestra_ops.adapters import kube_namespaces as kns
from kestra_ops.adapters.kube import Kube
from tests.fakes.kube_api import fake_kube_fixture

fake_kube = fake_kube_fixture()


@pytest.fixture
def kube(fake_kube):
    k = Kube(kubeconfig=str(fake_kube.kubeconfig), context="fake", namespace="hyperplane-kestra")
    yield k
    k.close()


def test_a_new_namespace_gets_our_labels_and_state(kube):
    assert not kns.exists(kube, "dr-1")
    kns.create(kube, "dr-1", {"kestra-ops/recovery-of": "dev"})
    assert kns.exists(kube, "dr-1")
    labels = kns.labels(kube, "dr-1")
    assert labels["app.kubernetes.io/managed-by"] == "kestra-ops"
    assert labels["kestra-ops/recovery-of"] == "dev"
    assert kns.read_state(kube, "dr-1") is None and kns.contents(kube, "dr-1") == []
    kns.write_state(kube, "dr-1", {"env": "dev", "set": "20261206T000000Z", "done": ["x"]})
    kns.write_state(kube, "dr-1", {"env": "dev", "set": "20261206T000000Z",
                                   "done": ["x", "y"]})
    assert kns.read_state(kube, "dr-1")["done"] == ["x", "y"]
    assert kns.contents(kube, "dr-1") == []  # the state itself is not "in use"


def test_secrets_made_first_are_allowed_but_workloads_and_configmaps_are_not(kube):
    kns.create(kube, "dr-2", {})
    kube.core.create_namespaced_secret("dr-2", {"metadata": {"name": "kestra-db"},
                                                "stringData": {"password": "x"}})
    assert kns.contents(kube, "dr-2") == []
    kube.core.create_namespaced_config_map("dr-2", {"metadata": {"name": "app"}, "data": {}})
    kube.core.create_namespaced_service("dr-2", {"metadata": {"name": "web"}, "spec": {
        "ports": [{"port": 80}]}})
    assert sorted(kns.contents(kube, "dr-2")) == ["configmap/app", "service/web"]


def test_deleting_a_namespace_that_is_gone_is_not_an_error(kube):
    kns.create(kube, "dr-3", {})
    assert kns.delete(kube, "dr-3") is True
    assert kns.delete(kube, "dr-3") in (True, False)
