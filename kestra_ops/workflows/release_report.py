"""The release report: every step with its timing and outcome, the revisions before and after,
and on failure the explanation Helm does not give (the failing checklist items with their
evidence: degraded pods and their reasons, Warning events, the last log lines of the failing
containers). Rendered as text and JSON; stored locally next to the pre-release backup and, when
the environment has object storage, in the bucket under ``releases/<env>/<UTC timestamp>.json``.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from kestra_ops.workflows.evidence import explain  # noqa: F401 - the release's explanation
from kestra_ops.workflows.plan import Step

# outcome -> exit code
OUTCOMES = {"released": 0, "unchanged": 0, "invalid": 1, "preflight-failed": 1, "aborted": 1,
            "failed": 1, "rolled-back": 1, "interrupted": 130}
STAMP = "%Y%m%dT%H%M%SZ"


def stamp(now: datetime.datetime | None = None) -> str:
    return (now or datetime.datetime.now(datetime.timezone.utc)).strftime(STAMP)


@dataclass
class ReleaseReport:
    env: str
    release: str
    namespace: str
    started: str  # UTC stamp, also the name of the backup folder and of the stored report
    outcome: str = "failed"
    message: str = ""
    steps: list[Step] = field(default_factory=list)
    before: int | None = None
    after: int | None = None  # the revision the upgrade wrote
    final: int | None = None  # the revision live at the end (after a rollback: the new one)
    rolled_back_to: int | None = None
    stopped_at: str | None = None  # the step Ctrl-C interrupted
    diff: str | None = None
    details: list[str] = field(default_factory=list)  # validation / preflight findings
    backup: dict = field(default_factory=dict)
    explanation: list[dict] = field(default_factory=list)  # failing checklist items
    check: dict | None = None
    recheck: dict | None = None
    warnings: list[str] = field(default_factory=list)
    stored: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)  # fields changed outside Helm it reverted
    force_conflicts: bool = False  # Helm 4 took those fields back (--force-conflicts)
    seconds: float = 0.0
    # the live ConfigMap's data before the release (None: there was none), for the restore after
    # a rollback; never in the report, which is printed and stored (it may hold credentials):
    # the 0600 file in backup["files"] has it
    configmap_before: dict | None = field(default=None, repr=False)

    @property
    def exit_code(self) -> int:
        return OUTCOMES[self.outcome]

    def to_dict(self) -> dict:
        return {"env": self.env, "release": self.release, "namespace": self.namespace,
                "started": self.started, "outcome": self.outcome, "message": self.message,
                "exit_code": self.exit_code, "revision_before": self.before,
                "revision_after": self.after, "revision_final": self.final,
                "rolled_back_to": self.rolled_back_to, "stopped_at": self.stopped_at,
                "seconds": round(self.seconds, 3), "diff": self.diff, "drift": list(self.drift),
                "force_conflicts": self.force_conflicts,
                "steps": [s.to_dict() for s in self.steps], "details": list(self.details),
                "backup": self.backup, "explanation": self.explanation, "check": self.check,
                "recheck": self.recheck, "warnings": list(self.warnings),
                "stored": list(self.stored)}


def render_text(report: ReleaseReport) -> str:
    rev = lambda n: "none" if n is None else str(n)  # noqa: E731
    lines = [f"release {report.env} (release {report.release} in {report.namespace}, "
             f"{report.started})"]
    for s in report.steps:
        detail = f": {s.detail}" if s.detail else ""
        lines.append(f"  {s.status.upper():11} {s.name} ({s.seconds:.1f}s){detail}")
    lines.append(f"  revisions: before {rev(report.before)}, after {rev(report.after)}, "
                 f"now {rev(report.final)}")
    if report.backup:
        lines.append(f"  backup: {report.backup.get('summary', '')}")
    for line in report.drift:
        lines.append(f"  changed outside Helm, reverted: {line}")
    if report.stopped_at:
        lines.append(f"  stopped at: {report.stopped_at}")
    for line in report.details:
        lines.append(f"  {line}")
    if report.explanation:
        lines.append("  why the release failed:")
        for item in report.explanation:
            lines.append(f"    FAIL {item['id']}: {item['reason']}")
            lines += [f"         {d}" for d in item["details"]]
    for warning in report.warnings:
        lines.append(f"  warning: {warning}")
    for where in report.stored:
        lines.append(f"  report stored: {where}")
    lines.append(f"release {report.env}: {report.message}")
    return "\n".join(lines)


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` with mode 0600 (values and application.yml may hold secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)
    return path


def store(report: ReleaseReport, folder: Path, env, *, storage=None) -> None:
    """Write ``report.json`` into the local release folder and, with object storage, to
    ``releases/<env>/<started>.json`` in the bucket. Failures become warnings, never errors."""
    from kestra_ops.errors import KestraOpsError

    data = json.dumps(report.to_dict(), indent=2, default=str)
    try:
        local = write_private(folder / "report.json", data)
        report.stored.append(str(local))
    except OSError as err:
        report.warnings.append(f"could not write the local report: {err}")
    if storage is None:
        from kestra_ops.wiring import storage_for_env as for_env

        storage, _why = for_env(env)
    if storage is None:
        return
    key = f"releases/{env.name}/{report.started}.json"
    try:
        storage.put_bytes(env.minio_bucket, key, data.encode(), "application/json")
        report.stored.append(f"s3://{env.minio_bucket}/{key}")
    except KestraOpsError as err:
        report.warnings.append(f"could not store the report in the bucket: {err}")
    except KeyboardInterrupt:  # the release is over: its outcome stays, the copy is skipped
        report.warnings.append("storing the report in the bucket was interrupted (Ctrl-C); the "
                               "local copy is complete")
