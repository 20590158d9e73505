"""Golden files of the ``check`` command itself (tests/golden/check-cli-*): the whole checklist
against the fake cluster, Kestra and MinIO of tests/helpers_checks, through the CLI (parse, run,
emit). What changes from run to run is normalised: times, ports, generated names and ids,
timestamps. KESTRA_OPS_UPDATE_GOLDEN=1 rewrites the files."""

from __future__ import annotations

import re

import pytest

from tests.helpers_checks import install  # noqa: F401
from tests.helpers_golden import assert_golden

RULES = [
    (r"\((\d+\.\d+)s\)", "(T s)"),  # a time in text
    (r'"seconds": [0-9.e-]+', '"seconds": 0'),
    (r"127\.0\.0\.1:\d+", "127.0.0.1:PORT"),
    (r"check-\d{8}-\d{6}-[0-9a-f]{6}", "check-STAMP-ID"),  # the e2e flow's unique id
    (r'(execution"?:? "?)[A-Za-z0-9]{16,24}', r"\1EXECUTION"),
    (r"(kestra-standalone|kestra-post-install)-[a-z0-9-]+?(?=[:\"\s])", r"\1-POD"),
    (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "TIME"),
]


def normalised(text: str) -> str:
    for pattern, replacement in RULES:
        text = re.sub(pattern, replacement, text)
    return text


@pytest.mark.parametrize("fmt, suffix", [("text", "txt"), ("table", "txt"), ("json", "json")])
def test_the_healthy_checklist_matches_its_golden_file(install, fmt, suffix):
    """(``table``, the checklist's earlier name of the text form, is still accepted.)"""
    # a flow listed before the e2e-flow item's own (which may exist when kestra-api looks)
    install.kestra.add_flow("id: hello\nnamespace: company.team\ntasks:\n  - id: log\n"
                            "    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
    result = install.run("--output", fmt)
    assert result.exit_code == 0, result.output
    assert_golden(f"check-cli-healthy.{suffix}", normalised(result.stdout))


def test_a_failing_checklist_matches_its_golden_file(install):
    app = install.application()
    del app["datasources"]["default"]
    install.set_configmap(app)
    install.minio.cluster = 503
    result = install.run("--only", "minio,configmap,kestra-api")
    assert result.exit_code == 1
    assert_golden("check-cli-failing.txt", normalised(result.stdout))
