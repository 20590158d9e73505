"""Shared by the CLI-level tests of cluster commands: run kestra-ops in-process, read the change
log and the deploy lock's Lease, and a terminal whose read is interrupted by Ctrl-C."""

from __future__ import annotations

import io
import json
from pathlib import Path

from click.testing import CliRunner

from kestra_ops.cli import cli
from kestra_ops.workflows.deploy.lock import LEASE_NAME

NS = "hyperplane-kestra"


def run(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input)


def lease(fake_kube, namespace: str = NS):
    return fake_kube.store.get("leases", namespace, LEASE_NAME)


def changes(root: Path) -> list[dict]:
    """The entries of ``backups/changes.jsonl`` (what every cluster change logs)."""
    path = Path(root) / "backups" / "changes.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class CtrlCTerminal(io.RawIOBase):
    """A terminal on stdin whose read is interrupted by Ctrl-C (the user at the prompt)."""

    def readable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""
        raise KeyboardInterrupt
