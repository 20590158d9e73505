"""--kube-version (chart lint, plan) is checked when parsed: a version the bundled Kubernetes
schemas do not cover is one line and exit 2, before helm runs (issue 12, item 9)."""

from __future__ import annotations

import pytest

from tests.helpers_values import all_output, in_repo, run_cli  # noqa: F401


@pytest.mark.parametrize("command", [["chart", "lint"], ["plan"]])
@pytest.mark.parametrize("version", ["9.99", "banana", "1.4", "0.5", "1.99.0", "1.33.x", "",
                                     "-1.33", "1.33.0.1", "v2.0.0", "１.３３"])
def test_an_unusable_kube_version_is_exit_2(command, version, in_repo):
    result = run_cli(*command, "--env", "dev", "--kube-version", version)
    assert result.exit_code == 2, all_output(result)[-400:]
    assert "Traceback" not in all_output(result) and "internal error" not in result.stderr
    assert "--kube-version" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("version", ["1.33", "1.33.0", "v1.30.2", "1.25.0"])
def test_supported_versions_are_accepted_as_written(version):
    from kestra_ops.cli.common import check_kube_version

    assert check_kube_version(None, None, version) == version
