"""The release report: every step with its timing and outcome, the revisions before and after,
and on failure the explanation Helm does not give (the failing checklist items with their
evidence: degraded pods and their reasons, Warning events, the last log lines of the failing
containers). :class:`ReleaseReport` is the release's state while it runs; :meth:`to_report` makes
the :class:`~kestra_ops.results.Report` every format renders. Its JSON is stored locally next to
the pre-release backup and, when the environment has object storage, in the bucket under
``releases/<env>/<UTC timestamp>.json``.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path

from kestra_ops.results import FAIL, INTERRUPTED, PASS, Item, Report, Section

# outcome -> exit code
OUTCOMES = {"released": 0, "unchanged": 0, "invalid": 1, "preflight-failed": 1, "aborted": 1,
            "failed": 1, "rolled-back": 1, "refused": 2, "interrupted": 130}
STAMP = "%Y%m%dT%H%M%SZ"


def stamp(now: datetime.datetime | None = None) -> str:
    return (now or datetime.datetime.now(datetime.timezone.utc)).strftime(STAMP)


@dataclass
class ReleaseReport:
    env: str
    release: str
    namespace: str
    started: str  # UTC stamp, also the name of the backup folder and of the stored report
    result: Report = field(default_factory=lambda: Report("release"))  # the Recorder's: steps
    outcome: str = "failed"
    message: str = ""
    before: int | None = None
    after: int | None = None  # the revision the upgrade wrote
    final: int | None = None  # the revision live at the end (after a rollback: the new one)
    rolled_back_to: int | None = None
    stopped_at: str | None = None  # the step Ctrl-C interrupted
    diff: str | None = None
    details: list[str] = field(default_factory=list)  # validation / preflight findings
    backup: dict = field(default_factory=dict)
    context: str = ""  # the kube context in use, by name (the title says it)
    image: str | None = None  # the Kestra image the values name (repository:tag)
    explanation: list[Item] = field(default_factory=list)  # failing checklist items
    check: dict | None = None
    recheck: dict | None = None
    warnings: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)  # fields changed outside Helm it reverted
    force_conflicts: bool = False  # Helm 4 took those fields back (--force-conflicts)
    seconds: float = 0.0
    # the live ConfigMap's data before the release (None: there was none), for the restore after
    # a rollback; never in the report, which is printed and stored (it may hold credentials):
    # the 0600 file in backup["files"] has it
    configmap_before: dict | None = field(default=None, repr=False)

    @property
    def steps(self):
        return self.result.steps

    @property
    def exit_code(self) -> int:
        return OUTCOMES[self.outcome]

    def to_report(self) -> Report:
        """The command's report: steps, the failing items (``explanation``), the diff's fields
        changed outside Helm, the revisions, backup and where it stopped, then ``release ENV:
        MESSAGE``. ``data`` keeps the release's own fields (revisions, backup, check...)."""
        report = self.result
        report.command, report.env = "release", self.env
        from kestra_ops.workflows.target import in_context

        report.title = (f"release {self.env} (release {self.release} in {self.namespace}"
                        f"{in_context(self.context)}, {self.started})")
        report.outcome, report.exit_code = self.outcome, self.exit_code
        report.status = (PASS if self.exit_code == 0 else
                         INTERRUPTED if self.outcome == "interrupted" else FAIL)
        report.message = f"release {self.env}: {self.message}"
        report.items, report.items_key = list(self.explanation), "explanation"
        report.details, report.warnings = list(self.details), list(self.warnings)
        report.data = {
            "release": self.release, "namespace": self.namespace, "started": self.started,
            "image": self.image,
            "revision_before": self.before, "revision_after": self.after,
            "revision_final": self.final, "rolled_back_to": self.rolled_back_to,
            "stopped_at": self.stopped_at, "seconds": round(self.seconds, 3),
            "diff": self.diff, "drift": list(self.drift),
            "force_conflicts": self.force_conflicts, "details": [], "backup": self.backup,
            "explanation": [], "check": self.check, "recheck": self.recheck, "stored": []}
        report.sections = self.sections(report)
        return report

    def sections(self, report: Report) -> list[Section]:
        """What the text shows beyond steps and items (the JSON has it as fields)."""
        rev = lambda n: "none" if n is None else str(n)  # noqa: E731
        lines = [f"  revisions: before {rev(self.before)}, after {rev(self.after)}, "
                 f"now {rev(self.final)}"]
        if self.diff:
            lines.append(f"  diff against the live objects: {self.diff}")
        if self.backup:
            lines.append(f"  backup: {self.backup.get('summary', '')}")
        if self.stopped_at:
            lines.append(f"  stopped at: {self.stopped_at}")
        lines += [f"  report stored: {where}" for where in report.data.get("stored", [])]
        out = [Section("", lines)]
        if self.drift:
            out.append(Section("changed outside Helm, reverted", list(self.drift)))
        return out


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` with mode 0600 (values and application.yml may hold secrets),
    never through a symlink (O_NOFOLLOW)."""
    from kestra_ops.fileio import write_private as write

    return write(path, text)


def store(report: Report, folder: Path, env, *, storage=None, kind: str = "releases") -> None:
    """Write the report's JSON as ``report.json`` into the local release folder and, with
    object storage, to ``<kind>/<env>/<started>.json`` in the bucket; each place goes into
    ``data["stored"]``. Failures become warnings, never errors."""
    from kestra_ops.errors import KestraOpsError

    data = json.dumps(report.to_dict(), indent=2, default=str)
    stored = report.data.setdefault("stored", [])
    try:
        local = write_private(folder / "report.json", data)
        stored.append(str(local))
    except OSError as err:
        report.warnings.append(f"could not write the local report: {err}")
    if storage is None:
        from kestra_ops.wiring import storage_for_env as for_env

        storage, _why = for_env(env)
    if storage is None:
        return
    key = f"{kind}/{env.name}/{report.data['started']}.json"
    try:
        storage.put_bytes(env.minio_bucket, key, data.encode(), "application/json")
        stored.append(f"s3://{env.minio_bucket}/{key}")
    except KestraOpsError as err:
        report.warnings.append(f"could not store the report in the bucket: {err}")
    except KeyboardInterrupt:  # the release is over: its outcome stays, the copy is skipped
        report.warnings.append("storing the report in the bucket was interrupted (Ctrl-C); the "
                               "local copy is complete")
