"""The kestra-ops Dockerfile, checked statically (no container runtime here): it matches the
chart, builds from the wheel in two stages, and follows hadolint's rules that apply to it
(each test names the rule: DL3006/DL3007 pinned bases, DL3008/DL3009/DL3015 apt, DL3042 pip
cache, DL4006 pipefail, DL3002 non-root, DL3020 COPY, DL3025 JSON form)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out, pending = [], ""
    for line in DOCKERFILE.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if not line.endswith("\\"):
            word, _, rest = pending.partition(" ")
            out.append((word.upper(), rest.strip()))
            pending = ""
    return out


def args() -> dict[str, str]:
    return {m[1]: m[2] for kind, rest in instructions() if kind == "ARG"
            for m in [re.match(r"(\w+)=(\S+)", rest)] if m}


def stages() -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for kind, rest in instructions():
        if kind == "FROM":
            out.append([])
        if out:
            out[-1].append((kind, rest))
    return out


def test_postgresql_client_major_matches_the_postgres_image():
    majors = set()
    for path in (ROOT / "charts/kestra/values.yaml", ROOT / "values/base.yaml"):
        tag = str(yaml.safe_load(path.read_text())["postgres"]["image"]["tag"])
        majors.add(tag.split(".")[0])
    assert majors == {args()["PG_MAJOR"]}
    assert '"postgresql-client-${PG_MAJOR}"' in DOCKERFILE
    assert "pg_dump --version | grep -q \" ${PG_MAJOR}\\.\"" in DOCKERFILE


def test_every_base_is_pinned_by_digest():  # DL3006, DL3007
    image = args()["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", image), image
    froms = [rest for kind, rest in instructions() if kind == "FROM"]
    assert froms and all(f.split()[0] == "${PYTHON_IMAGE}" for f in froms), froms
    assert ":latest" not in DOCKERFILE


def test_two_stages_the_image_installs_the_wheels_only():
    build, final = stages()
    assert build[0][1].endswith(" AS build")
    assert any(k == "RUN" and "pip wheel" in r and "--constraint constraints.txt" in r
               and "--wheel-dir /wheels" in r for k, r in build)
    assert ("COPY", "--from=build /wheels /wheels") in final
    install = next(r for k, r in final if k == "RUN" and "pip install" in r)
    assert "--no-index --find-links /wheels kestra-ops" in install and "rm -rf /wheels" in install
    assert not any(k == "COPY" and "kestra_ops" in r for k, r in final)  # no source tree


def test_apt_is_lean_and_cleaned():  # DL3008 (pinned by the major), DL3009, DL3015
    for kind, rest in instructions():
        if kind == "RUN" and "apt-get install" in rest:
            assert "--no-install-recommends" in rest and "-y" in rest
            assert "rm -rf /var/lib/apt/lists/*" in rest


def test_pip_keeps_no_cache():  # DL3042
    for kind, rest in instructions():
        if kind == "RUN" and re.search(r"\bpip (install|wheel)\b", rest):
            assert "--no-cache-dir" in rest, rest


def test_pipes_run_with_pipefail():  # DL4006
    seen_shell = False
    for kind, rest in stages()[-1]:
        if kind == "SHELL":
            seen_shell = '"-o", "pipefail"' in rest
        if kind == "RUN" and " | " in rest:
            assert seen_shell, rest


@pytest.mark.parametrize("kind", ["ADD"])
def test_copy_not_add(kind):  # DL3020
    assert all(k != kind for k, _ in instructions())


def test_runs_as_the_uid_the_cronjob_expects_with_kestra_ops_entrypoint():  # DL3002, DL3025
    cronjob = (ROOT / "charts/kestra/templates/backup-cronjob.yaml").read_text()
    uid = re.search(r"runAsUser: (\d+)", cronjob).group(1)
    gid = re.search(r"runAsGroup: (\d+)", cronjob).group(1)
    users = [rest for kind, rest in stages()[-1] if kind == "USER"]
    assert users and users[-1] == f"{uid}:{gid}" and not users[-1].startswith("0")
    assert f"--uid {uid}" in DOCKERFILE
    final = dict(stages()[-1])
    assert final["ENTRYPOINT"] == '["kestra-ops"]' and final["CMD"].startswith("[")
    assert re.search(r"- kestra-ops\n\s+- backup", cronjob)  # the chart's command: kestra-ops


def test_the_build_context_is_what_the_wheel_needs():
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*")] == "*"  # everything else stays out (tests, .venv, .git)
    for path in ("constraints.txt", "pyproject.toml", "setup.py", "README.md", "kestra_ops/",
                 "charts/", "values/"):
        assert f"!{path}" in ignored
        assert (ROOT / path.rstrip("/")).exists()
    copied = [src for k, r in stages()[0] if k == "COPY" for src in r.split()[:-1]]
    assert copied and all(f"!{c}" in ignored or f"!{c}/" in ignored for c in copied), copied


def test_the_image_installs_the_package_with_its_chart_and_values():
    """`pip install .` in the image builds the wheel with setup.py's hook, which needs the
    chart and the values layers beside the package (they ship as package data)."""
    for copied in ("setup.py", "charts ./charts", "values ./values"):
        assert re.search(rf"^COPY .*{re.escape(copied)}", DOCKERFILE, re.M), copied
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {"!setup.py", "!charts/", "!values/"} <= set(ignored)
