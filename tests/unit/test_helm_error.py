"""chart lint shows helm's own error line, not the advice or the tally helm prints after it."""

from __future__ import annotations

import pytest

from kestra_ops.adapters.helm_cli import HelmResult
from kestra_ops.workflows.deploy.chart_lint import helm_error


def result(stdout: str = "", stderr: str = "") -> HelmResult:
    return HelmResult(["helm"], 1, stdout, stderr)


@pytest.mark.parametrize("stdout, stderr, shown", [
    # helm template, a kubeVersion the --kube-version does not satisfy
    ("", "Error: chart requires kubeVersion: >=1.40.0-0 which is incompatible with Kubernetes "
         "v1.33.0\n\nUse --debug flag to render out invalid YAML\n",
     "chart requires kubeVersion: >=1.40.0-0 which is incompatible with Kubernetes v1.33.0"),
    # helm template, values refused by the chart's schema: the heading and the detail
    ("", "Error: values don't meet the specifications of the schema(s) in the following "
         "chart(s):\nkestra:\n- at '/datasources': missing property 'default'\n",
     "values don't meet the specifications of the schema(s) in the following chart(s):; "
     "kestra:; - at '/datasources': missing property 'default'"),
    # helm lint on a missing chart: the reason is on stdout, stderr has only the tally
    ("==> Linting /x\nError unable to check Chart.yaml file in chart: stat /x/Chart.yaml: no "
     "such file or directory\n\n", "Error: 1 chart(s) linted, 1 chart(s) failed\n",
     "unable to check Chart.yaml file in chart: stat /x/Chart.yaml: no such file or directory"),
    ("", "Error: path \"/x\" not found\n", 'path "/x" not found'),
    ("", "something odd\nlast words\n", "last words"),
    ("partial output\n", "", "partial output"),
    ("", "Use --debug flag to render out invalid YAML\n", "failed"),
    ("", "", "failed"),
])
def test_helm_error(stdout, stderr, shown):
    assert helm_error(result(stdout, stderr)) == shown
