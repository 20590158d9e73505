"""The kestra-ops Dockerfile, checked statically (no docker here): it matches the chart."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_postgresql_client_major_matches_the_postgres_image():
    majors = set()
    for path in (ROOT / "charts/kestra/values.yaml", ROOT / "values/base.yaml"):
        tag = str(yaml.safe_load(path.read_text())["postgres"]["image"]["tag"])
        majors.add(tag.split(".")[0])
    pg_major = re.search(r"^ARG PG_MAJOR=(\d+)$", DOCKERFILE, re.M).group(1)
    assert majors == {pg_major}
    assert "postgresql-client-${PG_MAJOR}" in DOCKERFILE
    assert re.search(r"^FROM python:3\.11-slim(-bookworm)?$", DOCKERFILE, re.M)  # bookworm: pg 15


def test_installs_with_the_constraints_file():
    assert "COPY constraints.txt" in DOCKERFILE
    assert "pip install --no-cache-dir --constraint constraints.txt ." in DOCKERFILE
    assert (ROOT / "constraints.txt").is_file()
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "!constraints.txt" in ignored and "!kestra_ops/" in ignored


def test_runs_as_the_uid_the_cronjob_expects_with_kestra_ops_entrypoint():
    cronjob = (ROOT / "charts/kestra/templates/backup-cronjob.yaml").read_text()
    uid = re.search(r"runAsUser: (\d+)", cronjob).group(1)
    gid = re.search(r"runAsGroup: (\d+)", cronjob).group(1)
    assert re.search(rf"^USER {uid}:{gid}$", DOCKERFILE, re.M)
    assert f"--uid {uid}" in DOCKERFILE
    assert 'ENTRYPOINT ["kestra-ops"]' in DOCKERFILE
    assert re.search(r"- kestra-ops\n\s+- backup", cronjob)  # the chart's command: kestra-ops


def test_the_image_installs_the_package_with_its_chart_and_values():
    """`pip install .` in the image builds the wheel with setup.py's hook, which needs the
    chart and the values layers beside the package (they ship as package data)."""
    for copied in ("setup.py", "charts ./charts", "values ./values"):
        assert re.search(rf"^COPY .*{re.escape(copied)}", DOCKERFILE, re.M), copied
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {"!setup.py", "!charts/", "!values/"} <= set(ignored)
