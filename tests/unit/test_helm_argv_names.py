"""A release or namespace starting with '-' never reaches helm's argv as a flag: settings refuse
it (not a DNS label), and the Helm adapter refuses it again before running anything (issue 12,
item 10)."""

from __future__ import annotations

import pytest

from kestra_ops.adapters.helm import Helm
from kestra_ops.errors import InvalidInput


@pytest.fixture
def helm(tmp_path):
    calls = tmp_path / "calls"
    fake = tmp_path / "helm"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\nexit 1\n")
    fake.chmod(0o755)
    return Helm(helm=str(fake)), calls


@pytest.mark.parametrize("release, namespace", [("--post-renderer=/bin/sh", "ns"),
                                                ("kestra", "-n"), ("", "ns")])
def test_every_helm_call_refuses_a_flag_as_a_name(release, namespace, helm):
    client, calls = helm
    runs = [
        lambda: client.template("charts/kestra", [], release=release, namespace=namespace),
        lambda: client.upgrade_install(release, "charts/kestra", namespace, [], timeout="1m"),
        lambda: client.rollback(release, namespace, 1, timeout="1m"),
        lambda: client.history(release, namespace),
        lambda: client.status(release, namespace),
        lambda: client.manifest(release, namespace),
    ]
    if release == "kestra":
        runs.append(lambda: client.lint("charts/kestra", [], namespace=namespace))
    for run in runs:
        with pytest.raises(InvalidInput, match="would reach helm as a flag"):
            run()
    assert not calls.exists()  # helm never ran
