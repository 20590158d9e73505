"""The upgrade report: the step run (from, to, reversible), its gates, the migration Jobs with
their logs, the release, the backup set used and, after a failure past an irreversible point,
the restore. Stored like the release report: ``backups/upgrades/<env>/<UTC>/report.json``
(0600) and, with object storage, ``upgrades/<env>/<UTC>.json`` in the env's bucket."""

from __future__ import annotations

from dataclasses import dataclass, field

from kestra_ops.results import FAIL, INTERRUPTED, PASS, Item, Report, Section

# outcome -> exit code
OUTCOMES = {"upgraded": 0, "unchanged": 0, "recovered": 0, "blocked": 1, "aborted": 1, "failed": 1,
            "rolled-back": 1, "restored": 1, "refused": 2, "interrupted": 130}


@dataclass
class UpgradeReport:
    env: str
    started: str  # UTC stamp: the report's folder and key
    result: Report = field(default_factory=lambda: Report("upgrade run"))
    outcome: str = "failed"
    message: str = ""
    start: str | None = None  # the running version
    end: str | None = None  # the step's target version
    target: str | None = None  # the final target (--to)
    reversible: bool | None = None
    image: str | None = None
    gates: list[Item] = field(default_factory=list)
    jobs: list[dict] = field(default_factory=list)
    backup_set: str | None = None  # the verified pre-upgrade set
    failed_state_set: str | None = None  # the failed upgrade's database, kept before a restore
    release: dict | None = None
    restore: list[str] = field(default_factory=list)
    overlay: str | None = None
    values_diff: str | None = None
    next: str | None = None
    check: dict | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def steps(self):
        return self.result.steps

    def to_report(self) -> Report:
        report = self.result
        report.command, report.env = "upgrade run", self.env
        report.title = (f"upgrade run {self.env}: {self.start or '?'} -> {self.end or '?'}"
                        + (f" (target {self.target})" if self.target and self.target != self.end
                           else "") + f", {self.started}")
        report.outcome = self.outcome
        report.exit_code = OUTCOMES[self.outcome]
        report.status = (PASS if report.exit_code == 0 else
                         INTERRUPTED if self.outcome == "interrupted" else FAIL)
        report.message = f"upgrade run {self.env}: {self.message}"
        report.items, report.items_key = list(self.gates), "gates"
        report.warnings = list(self.warnings)
        report.data = {
            "started": self.started, "from": self.start, "to": self.end, "target": self.target,
            "reversible": self.reversible, "image": self.image, "backup_set": self.backup_set,
            "failed_state_set": self.failed_state_set, "jobs": list(self.jobs),
            "release": self.release, "restore": list(self.restore), "overlay": self.overlay,
            "values_diff": self.values_diff, "next": self.next, "check": self.check,
            "seconds": round(self.seconds, 3), "stored": []}
        report.sections = self.sections(report)
        return report

    def sections(self, report: Report) -> list[Section]:
        out = []
        lines = []
        if self.backup_set:
            lines.append(f"  backup set used: {self.backup_set}")
        if self.failed_state_set:
            lines.append(f"  the failed upgrade's database kept as set: {self.failed_state_set}")
        if self.release:
            lines.append(f"  release: {self.release.get('outcome')}: "
                         f"{self.release.get('message')}")
        if self.next:
            lines.append(f"  next: {self.next}")
        lines += [f"  report stored: {w}" for w in report.data.get("stored", [])]
        if lines:
            out.append(Section("", lines))
        for job in self.jobs:
            head = (f"migration Job {job.get('name')} ({job.get('migration')}): "
                    f"{'succeeded' if job.get('succeeded') else 'FAILED'}; {job.get('reason')}")
            body = [f"  {line}" for line in job.get("logs") or []]
            if job.get("logs_note"):
                body.append(f"  (log: {job['logs_note']})")
            out.append(Section(head, body))
        if self.restore:
            out.append(Section("restore of the pre-upgrade state", [f"  {x}" for x in
                                                                       self.restore]))
        return out


def store(report: Report, env, started: str, *, storage=None) -> None:
    """The report's JSON beside the release reports (see the module doc)."""
    from pathlib import Path

    from kestra_ops.workflows.release.report import store as store_release

    folder = Path(env.root) / "backups" / "upgrades" / env.name / started
    store_release(report, folder, env, storage=storage, kind="upgrades")
