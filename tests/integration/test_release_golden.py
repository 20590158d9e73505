"""Golden files of ``release`` (tests/golden/release-*): a good release and one whose check
fails and is rolled back, on the fake cluster, Kestra and MinIO of tests/helpers_checks, through
the CLI (parse, run, emit). Times, ports, holders, folders, stamps and generated names are
normalised. KESTRA_OPS_UPDATE_GOLDEN=1 rewrites the files."""

from __future__ import annotations

import re

from tests.helpers_checks import install  # noqa: F401
from tests.helpers_golden import assert_golden
from tests.integration.release_support import CHECK, failing_check

RULES = [
    (r"\((\d+\.\d+)s\)", "(T s)"),
    (r'"seconds": [0-9.e-]+', '"seconds": 0'),
    (r'"attempts": \d+', '"attempts": N'),  # a re-check may need a second try, or not
    (r", \d+ attempts\)", ")"),
    (r"\b\d+(\.\d+)?s(?= e2e| elapsed)", "Ts"),
    (r"127\.0\.0\.1:\d+", "127.0.0.1:PORT"),
    (r"[\w.-]+@[\w.-]+:\d+", "USER@HOST:PID"),  # the lock holder
    (r"/[^\s\"']*/backups/", "ROOT/backups/"),
    (r"\d{8}T\d{6}Z", "STAMP"),
    (r"check-\d{8}-\d{6}-[0-9a-f]{6}", "check-STAMP-ID"),
    (r'(execution"?:? "?)[A-Za-z0-9]{16,24}', r"\1EXECUTION"),
    (r"(kestra-standalone|kestra-post-install)-[a-z0-9-]+?(?=[:\"\s,)])", r"\1-POD"),
    (r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00| UTC)?", "TIME"),
    (r"(Lease|lease) [^\s]+ expires TIME", r"\1 expires TIME"),
    (r"sha256:[0-9a-f]{8}", "sha256:DIGEST"),
]


def steady(install) -> None:
    """A flow listed before the e2e-flow item's own (which may exist when kestra-api looks)."""
    install.kestra.add_flow("id: hello\nnamespace: company.team\ntasks:\n  - id: log\n"
                            "    type: io.kestra.plugin.core.log.Log\n    message: hi\n")


def normalised(text: str) -> str:
    for pattern, replacement in RULES:
        text = re.sub(pattern, replacement, text)
    return text


def test_a_good_release_matches_its_golden_files(install):
    steady(install)
    text = install.run("--yes", "--skip-backup", *CHECK, command="release")
    assert text.exit_code == 0, text.output
    assert_golden("release-good.txt", normalised(text.stdout))


def test_a_rolled_back_release_matches_its_golden_files(install, monkeypatch):
    steady(install)
    failing_check(install, monkeypatch)
    result = install.run("--yes", "--skip-backup", "--output", "json", *CHECK,
                         command="release")
    assert result.exit_code == 1, result.output
    assert_golden("release-rolled-back.json", normalised(result.stdout))
