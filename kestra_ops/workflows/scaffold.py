"""kestra-ops init: a deployment repository as a team keeps it.

Writes, under DIR: ``kestra-ops.yaml`` (one section per environment, no kube context: the
kubeconfig's current one is used until one is named), ``values/base.yaml`` and one overlay per
environment (the packaged layers, comments kept; an environment the package has no layer for
gets an overlay naming its own bucket), a ``flows/`` example that passes ``flows validate``, a
GitHub Actions workflow (values validate as SARIF for code scanning, flows validate) and a
GitLab CI job (the JUnit report), and a ``.pre-commit-config.yaml`` using this repository's
hooks. The chart is not copied: the packaged one is used until the repository has its own
``charts/kestra``.

All or nothing: every target is checked first; an existing file (or anything else at a target
path: a directory, a symlink) stops it before anything is written, unless ``force`` (then a
regular file is replaced; a symlink or a directory never is). Files are written with
:func:`kestra_ops.fileio.write_atomic`, never through a symlink.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from kestra_ops import results
from kestra_ops.errors import InvalidInput

ENV_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
REPO_URL = "https://github.com/hyperplane/kestra-ops"


@dataclass
class Scaffold:
    """The files of a new deployment repository: relative path -> text."""

    envs: list[str]
    files: dict[str, str] = field(default_factory=dict)


def parse_envs(text: str) -> list[str]:
    envs = [e.strip() for e in text.split(",") if e.strip()]
    if not envs:
        raise InvalidInput("--env: name at least one environment (e.g. dev,staging,production)")
    for env in envs:
        if not ENV_NAME.match(env):
            raise InvalidInput(f"--env {env!r}: an environment name is lower-case letters, "
                               "digits and '-' (it names the bucket kestra-<env>)")
    if len(set(envs)) != len(envs):
        raise InvalidInput("--env: an environment is named twice")
    return envs


def _config(envs: list[str]) -> str:
    lines = [
        "# kestra-ops.yaml — one section per environment. Precedence for every setting:",
        "#   command-line flag > KESTRA_OPS_<SETTING> environment variable > this file > default.",
        "# Credentials never go here: they come from environment variables (KESTRA_OPS_*),",
        "# files, or the Kubernetes Secrets named in values (kestra-ops secrets apply).",
        "# No chart here: the one packaged with kestra-ops is used until charts/kestra exists.",
        "defaults:",
        "  # namespace: kestra           # KESTRA_OPS_NAMESPACE / -n",
        "  # release: kestra             # KESTRA_OPS_RELEASE / --release",
        "  minio:",
        "    # the cluster's MinIO (or any S3 store), as reached from where kestra-ops runs",
        "    endpoint: minio.minio.svc.cluster.local:9000   # KESTRA_OPS_MINIO_ENDPOINT",
        "",
        "environments:",
    ]
    for env in envs:
        lines += [
            f"  {env}:",
            "    # context: my-cluster      # kube context (KESTRA_OPS_CONTEXT / --kube-context);",
            "    #                            unset: the kubeconfig's current context",
            f"    minio: {{bucket: kestra-{env}}}",
            f"    values: [values/base.yaml, values/{env}.yaml]",
        ]
    return "\n".join(lines) + "\n"


def _overlay(env: str, packaged: Path | None) -> str:
    if packaged is not None and packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (f"# values/{env}.yaml — the {env} overlay (applied after values/base.yaml).\n"
            "# Only what differs from base; maps merge, lists replace, null deletes a key.\n"
            "\nkestra:\n  storage:\n    minio:\n"
            f"      bucket: kestra-{env}   # one bucket per environment\n")


FLOW = """\
# An example flow: `kestra-ops flows validate flows` checks it offline,
# `kestra-ops flows apply flows --env dev` sends it to Kestra.
id: hello
namespace: company.team
description: Says hello (an example kept by kestra-ops init).

tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: Hello from {{ flow.namespace }}
"""


def _github(envs: list[str]) -> str:
    steps = "\n".join(
        f"      - name: values validate ({env})\n"
        f"        run: kestra-ops values validate --env {env} -o sarif > values-{env}.sarif\n"
        f"      - uses: github/codeql-action/upload-sarif@v3\n"
        f"        if: always()\n"
        f"        with: {{sarif_file: values-{env}.sarif, category: values-{env}}}"
        for env in envs)
    return f"""\
# Pre-deploy validation: the values of every environment (findings as code-scanning alerts)
# and the flows, on every push and pull request. Offline: no cluster, no credentials.
name: kestra-ops
on: [push, pull_request]
permissions:
  contents: read
  security-events: write   # upload-sarif
jobs:
  validate:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with: {{python-version: "3.11"}}
      - run: pip install "kestra-ops @ git+{REPO_URL}"
{steps}
      - name: flows validate
        run: kestra-ops flows validate flows
"""


def _gitlab(envs: list[str]) -> str:
    script = "\n".join(f"    - kestra-ops values validate --env {env} -o junit > "
                       f"values-{env}.junit.xml" for env in envs)
    reports = ", ".join(f"values-{env}.junit.xml" for env in envs)
    return f"""\
# Pre-deploy validation: the values of every environment (JUnit, shown in merge requests)
# and the flows. Offline: no cluster, no credentials.
kestra-ops-validate:
  image: python:3.11-slim
  stage: test
  script:
    - pip install "kestra-ops @ git+{REPO_URL}"
{script}
    - kestra-ops flows validate flows
  artifacts:
    when: always
    reports:
      junit: [{reports}]
"""


def _pre_commit() -> str:
    return f"""\
# pre-commit (https://pre-commit.com): values and flows checked before every commit.
repos:
  - repo: {REPO_URL}
    rev: main   # pin a tag or commit
    hooks:
      - id: kestra-ops-values-validate
      - id: kestra-ops-flows-validate
"""


def scaffold(envs: list[str]) -> Scaffold:
    from kestra_ops import packaged

    folder = packaged.root() / packaged.VALUES
    out = Scaffold(envs)
    out.files["kestra-ops.yaml"] = _config(envs)
    out.files["values/base.yaml"] = (folder / "base.yaml").read_text(encoding="utf-8")
    for env in envs:
        out.files[f"values/{env}.yaml"] = _overlay(env, folder / f"{env}.yaml")
    out.files["flows/company.team/hello.yaml"] = FLOW
    out.files[".github/workflows/kestra-ops.yml"] = _github(envs)
    out.files[".gitlab-ci.yml"] = _gitlab(envs)
    out.files[".pre-commit-config.yaml"] = _pre_commit()
    return out


MAX_REPLACED = 16 * 1024 * 1024  # a file --force replaces is kept in memory until the end


def _kept(path: Path) -> bytes:
    """The bytes of a file --force replaces (a regular file, not a symlink, at most
    :data:`MAX_REPLACED`): what an interrupted init puts back."""
    from kestra_ops.readfile import NotReadable, read_regular

    try:
        return read_regular(path, MAX_REPLACED, nofollow=True)
    except (NotReadable, OSError) as err:
        reason = getattr(err, "reason", None) or getattr(err, "strerror", None) or str(err)
        raise InvalidInput(f"{path}: not replaced ({reason}); nothing was written") from None


def init(target: Path, envs: list[str], *, force: bool = False) -> results.Report:
    """Write the scaffold under ``target`` (see the module doc)."""
    from kestra_ops.fileio import write_atomic

    plan = scaffold(envs)
    if target.exists() and not target.is_dir():
        raise InvalidInput(f"{target}: not a directory")
    blocked, replaced = [], []
    for rel in plan.files:
        path = target / rel
        for parent in list(path.relative_to(target).parents)[:-1]:  # a folder that is a file
            if (target / parent).is_symlink() or (target / parent).exists() and \
                    not (target / parent).is_dir():
                blocked.append(f"{parent}/ (not a directory)")
        if path.is_symlink() or (path.exists() and not path.is_file()):
            blocked.append(f"{rel} (a symlink or not a file: never replaced)")
        elif path.exists():
            (replaced if force else blocked).append(rel)
    if blocked:
        raise InvalidInput(f"{target}: would overwrite {', '.join(sorted(set(blocked)))}; "
                           "nothing was written",
                           hint="pass --force to replace existing files (never a symlink)"
                           if not any("symlink" in b or "directory" in b for b in blocked)
                           else None)
    report = results.Report("init", title=f"init {target}")
    before = {rel: _kept(target / rel) for rel in replaced}  # put back if interrupted
    written: list[str] = []
    try:
        for rel, text in plan.files.items():
            write_atomic(target / rel, text)
            written.append(rel)
            report.details.append(f"{'replaced' if rel in replaced else 'wrote'} {rel}")
    except BaseException:  # Ctrl-C or a write error: nothing half-done is left behind
        for rel in written:
            if rel in before:
                (target / rel).write_bytes(before[rel])
            else:
                (target / rel).unlink(missing_ok=True)
        raise
    report.data = {"target": str(target), "environments": envs, "files": list(plan.files),
                   "replaced": replaced}
    go = "" if target == Path(".") else f"cd {target} && "
    report.message = (f"init {target}: {len(plan.files)} files for {', '.join(envs)}; next: "
                      f"{go}kestra-ops plan --env {envs[0]}")
    return report
