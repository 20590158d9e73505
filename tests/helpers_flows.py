"""Shared by the flows tests: a fake Kestra server reached as a user would (KESTRA_OPS_KESTRA_URL,
KESTRA_OPS_BASIC_AUTH_*), a project folder with kestra-ops.yaml and a values layer carrying the
plugin blacklist, and the CLI run end to end through Click. (It was test_flows_support.py, a test
module that collected no test.)"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kestra_ops.cli import cli
from tests.fakes.kestra_server import FakeKestra

OPENAPI = Path(__file__).resolve().parents[1] / ".." / "shared" / "kestra-openapi.yml"
BLACKLIST = ["io.kestra.plugin.docker.*", "io.kestra.plugin.scripts.shell.*"]
LOG = "io.kestra.plugin.core.log.Log"


def flow(flow_id: str, namespace: str = "company.team", *, message: str = "hello",
         task_type: str = LOG, extra: str = "") -> str:
    return (f"# flow {flow_id}\nid: {flow_id}\nnamespace: {namespace}\n{extra}tasks:\n"
            f"  - id: log\n    type: {task_type}\n    message: \"{message}\"\n")


@dataclass
class Project:
    root: Path
    kestra: FakeKestra

    @property
    def flows(self) -> Path:
        return self.root / "flows"

    def write(self, relative: str, text: str) -> Path:
        path = self.flows / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def run(self, *args: str, input: str | None = None) -> Result:
        """`kestra-ops --debug --config ... ARGS` in-process; a bug raises instead of exiting."""
        result = CliRunner().invoke(cli, ["--debug", "--config", str(self.root / "kestra-ops.yaml"),
                                          *args], input=input)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    def changes(self) -> list[dict]:
        path = self.root / "backups" / "changes.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def writes(self) -> list:
        """Every request that changes flows (anything but GETs and validation)."""
        return [r for r in self.kestra.calls() if r.method != "GET"
                and not r.path.endswith("/flows/validate")]

    def server_flows(self) -> dict[tuple[str, str], str]:
        return {(f["namespace"], f["id"]): f["source"] for f in self.kestra.all_flows()}


def table(output: str, title: str = "changes") -> list[dict[str, str]]:
    """The rows of the text table ``title`` in ``output``, as {column: cell} (cells cut at the
    header's column starts, so an empty cell reads ""); [] when there is no such table."""
    lines = output.splitlines()
    if title not in lines:
        return []
    at = lines.index(title)
    header = lines[at + 1]
    starts = [(m.start(), m.group()) for m in re.finditer(r"\S+(?: \S+)*", header)]
    rows = []
    for line in lines[at + 2:]:
        if not line.startswith("   ") or line.startswith("    "):
            break
        cells = [line[start:(starts[i + 1][0] if i + 1 < len(starts) else None)].strip()
                 for i, (start, _) in enumerate(starts)]
        rows.append(dict(zip((name for _, name in starts), cells)))
    return rows


@pytest.fixture
def kestra():
    with FakeKestra(step_seconds=0.02, follow_not_found_seconds=0.1) as fake:
        yield fake


@pytest.fixture
def project(tmp_path, kestra, monkeypatch) -> Project:
    (tmp_path / "values.yaml").write_text(
        "kestra:\n  plugins:\n    blacklist:\n" + "".join(f'      - "{b}"\n' for b in BLACKLIST))
    (tmp_path / "kestra-ops.yaml").write_text(
        "environments:\n  dev: {values: [values.yaml]}\n  production: {values: [values.yaml]}\n")
    for name in ("KESTRA_OPS_CONFIG", "KESTRA_OPS_ENV", "KUBECONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KESTRA_OPS_KESTRA_URL", kestra.url)
    monkeypatch.setenv("KESTRA_OPS_BASIC_AUTH_USERNAME", kestra.username)
    monkeypatch.setenv("KESTRA_OPS_BASIC_AUTH_PASSWORD", kestra.password)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flows").mkdir()
    return Project(tmp_path, kestra)
