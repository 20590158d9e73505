"""`minio check` reads top-down (issue 12, item 15): with stdout and stderr on one terminal, the
command's header comes before any step's FAIL line, and the report's title before its steps."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers_net import closed_port

ROOT = Path(__file__).resolve().parents[2]


def test_header_before_the_fail_line(tmp_path):
    (tmp_path / "kestra-ops.yaml").write_text(
        f"defaults: {{chart: {ROOT / 'charts' / 'kestra'}}}\nenvironments:\n"
        f"  dev: {{minio: {{endpoint: 'http://127.0.0.1:{closed_port()}', bucket: kestra-dev}}, "
        f"values: [{ROOT / 'values' / 'base.yaml'}, {ROOT / 'values' / 'dev.yaml'}]}}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KESTRA_OPS_")}
    env.update(KESTRA_OPS_NO_CACHE="1", KESTRA_OPS_PROGRESS="1",
               KESTRA_OPS_MINIO_ACCESS_KEY="probe",
               KESTRA_OPS_MINIO_SECRET_KEY="probe-secret-key")
    proc = subprocess.run([sys.executable, "-m", "kestra_ops", "minio", "check", "--env", "dev"],
                          cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stdout
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("minio check dev: http://127.0.0.1:"), proc.stdout
    assert lines[0].endswith("bucket kestra-dev")
    assert lines[-1].endswith(": FAILED")
    assert "connection refused" in proc.stdout
