"""kube_read.served_apis: which of the chart's capability APIs a cluster serves, from its
discovery documents, in helm's --api-versions forms (the real API server answers these in
tests/e2e/test_network_e2e.py)."""

from __future__ import annotations

import json

from kestra_ops.adapters.kube_read import served_apis
from kestra_ops.chart import CAPABILITY_APIS
from kestra_ops.errors import NotFound, PermissionDenied

GROUPS = {"groups": [
    {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}]},
    {"name": "monitoring.coreos.com",
     "versions": [{"groupVersion": "monitoring.coreos.com/v1", "version": "v1"}]},
    {"name": "external.metrics.k8s.io",
     "versions": [{"groupVersion": "external.metrics.k8s.io/v1beta1", "version": "v1beta1"}]},
]}


class Discovery:
    """A stand-in for Kube: answers GETs of discovery paths from a dict (missing: 404)."""

    def __init__(self, documents: dict, refuse: str | None = None):
        self.documents, self.refuse, self.paths = documents, refuse, []
        self.api_client = None

    def call(self, what, fn, api, path, params, timeout):
        self.paths.append(path)
        if path == self.refuse:
            raise PermissionDenied(f"{what}: forbidden")
        if path not in self.documents:
            raise NotFound(f"{what}: not found")
        return json.dumps(self.documents[path]).encode()


def test_kinds_need_their_resource_and_versions_their_group_version():
    kube = Discovery({"/apis": GROUPS, "/apis/monitoring.coreos.com/v1": {"resources": [
        {"name": "servicemonitors", "kind": "ServiceMonitor"},
        {"name": "podmonitors", "kind": "PodMonitor"}]}})
    assert served_apis(kube, CAPABILITY_APIS) == ["monitoring.coreos.com/v1/ServiceMonitor",
                                                  "external.metrics.k8s.io/v1beta1"]
    # one document per group version asked about a kind, none for the others
    assert kube.paths == ["/apis", "/apis/monitoring.coreos.com/v1"]


def test_a_group_without_the_kind_is_not_the_kind():
    kube = Discovery({"/apis": GROUPS, "/apis/monitoring.coreos.com/v1": {"resources": [
        {"name": "podmonitors", "kind": "PodMonitor"}]}})
    assert served_apis(kube, ("monitoring.coreos.com/v1/ServiceMonitor",)) == []


def test_nothing_served_when_discovery_is_refused_or_missing():
    assert served_apis(Discovery({}), CAPABILITY_APIS) == []
    assert served_apis(Discovery({"/apis": GROUPS}, refuse="/apis"), CAPABILITY_APIS) == []
    refused = Discovery({"/apis": GROUPS}, refuse="/apis/monitoring.coreos.com/v1")
    assert served_apis(refused, CAPABILITY_APIS) == ["external.metrics.k8s.io/v1beta1"]
