"""Shared fixtures: the fake Kubernetes API reached through a real kubeconfig (KUBECONFIG), and
a recording stand-in helm executable (KESTRA_OPS_HELM), and an S3-protocol server on loopback."""

from __future__ import annotations

import pytest

from tests.fakes.helm_standin import helm_standin_fixture
from tests.fakes.kube_api import fake_kube_fixture
from tests.fakes.s3_server import s3, s3_server  # noqa: F401 - fixtures: an S3 server on loopback

_fake_kube = fake_kube_fixture(ready_delay=0.05)


@pytest.fixture
def fake_kube(_fake_kube, monkeypatch):
    """A running FakeKube; KUBECONFIG points at it (context "fake"), as a user's would."""
    monkeypatch.setenv("KUBECONFIG", str(_fake_kube.kubeconfig))
    monkeypatch.setenv("KESTRA_OPS_CONTEXT", "fake")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return _fake_kube


helm_standin = helm_standin_fixture()  # a recording stand-in helm: helm_standin("v4.1.4")


@pytest.fixture(autouse=True)
def _progress_lines(monkeypatch):
    """Progress goes to a terminal only; the suite (no terminal) reads its lines, so it asks for
    them as a CI log can (KESTRA_OPS_PROGRESS=1). Tests of the default delete the variable."""
    monkeypatch.setenv("KESTRA_OPS_PROGRESS", "1")
