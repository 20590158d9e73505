"""The scale report: the values change (the overlay's masked diff), Kestra's counts before and
after, the release (steps, revisions, check), the components the cluster runs, and what was put
back. Stored like the release report: ``backups/scale/<env>/<UTC>/report.json`` (0600) and, with
object storage, ``scale/<env>/<UTC>.json`` in the env's bucket."""

from __future__ import annotations

from dataclasses import dataclass, field

from kestra_ops.results import FAIL, INTERRUPTED, PASS, Report, Section

# outcome -> exit code
OUTCOMES = {"scaled": 0, "unchanged": 0, "planned": 0, "blocked": 1, "aborted": 1, "failed": 1,
            "rolled-back": 1, "lost": 1, "refused": 2, "interrupted": 130}


@dataclass
class ScaleReport:
    env: str
    started: str  # UTC stamp: the report's folder and key
    dry_run: bool = False
    result: Report = field(default_factory=lambda: Report("scale"))
    outcome: str = "failed"
    message: str = ""
    mode_before: str | None = None
    mode_after: str | None = None
    workers_key: str | None = None
    workers_before: object = None
    workers_after: object = None
    changes: list[str] = field(default_factory=list)  # "mode: standalone -> distributed"
    overlay: str | None = None
    values_diff: str | None = None
    overlay_restored: bool | None = None  # None: never written
    counts_before: dict | None = None
    counts_after: dict | None = None
    lost: list[str] = field(default_factory=list)
    release: dict | None = None
    check: dict | None = None
    components: dict | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def steps(self):
        return self.result.steps

    def to_report(self) -> Report:
        report = self.result
        report.command, report.env = "scale", self.env
        report.title = (f"scale {self.env}{' (dry run)' if self.dry_run else ''}: "
                        f"{self.mode_before or '?'} -> {self.mode_after or '?'}, {self.started}")
        report.outcome = self.outcome
        report.exit_code = OUTCOMES[self.outcome]
        report.status = (PASS if report.exit_code == 0 else
                         INTERRUPTED if self.outcome == "interrupted" else FAIL)
        report.message = f"scale {self.env}: {self.message}"
        report.warnings = list(self.warnings)
        report.data = {
            "started": self.started, "dry_run": self.dry_run, "mode_before": self.mode_before,
            "mode_after": self.mode_after, "workers_key": self.workers_key,
            "workers_before": self.workers_before, "workers_after": self.workers_after,
            "changes": list(self.changes), "overlay": self.overlay,
            "values_diff": self.values_diff, "overlay_restored": self.overlay_restored,
            "counts_before": self.counts_before, "counts_after": self.counts_after,
            "lost": list(self.lost), "release": self.release, "check": self.check,
            "components": self.components, "seconds": round(self.seconds, 3), "stored": []}
        report.sections = self.sections(report)
        return report

    def sections(self, report: Report) -> list[Section]:
        lines = [f"  {c}" for c in self.changes]
        for when, counts in (("before", self.counts_before), ("after", self.counts_after)):
            if counts:
                lines.append(f"  Kestra {when}: {counts['flows']} flows, "
                             f"{counts['executions']} executions, {counts['triggers']} triggers")
        if self.release:
            lines.append(f"  release: {self.release.get('outcome')}: "
                         f"{self.release.get('message')}")
        if self.components:
            lines += [f"  running: {r}" for r in self.components.get("ready") or []]
            lines += [f"  NOT as expected: {p}" for p in self.components.get("problems") or []]
            if self.components.get("terminating"):
                lines.append("  still terminating (finishing their tasks): "
                             + ", ".join(self.components["terminating"]))
        lines += [f"  report stored: {w}" for w in report.data.get("stored", [])]
        out = [Section("", lines)] if lines else []
        if self.values_diff:
            out.append(Section(f"values change ({self.overlay})",
                               self.values_diff.rstrip("\n").splitlines()))
        return out


def store(report: Report, env, started: str, *, storage=None) -> None:
    """The report's JSON beside the release reports (see the module doc)."""
    from pathlib import Path

    from kestra_ops.workflows.release.report import store as store_release

    folder = Path(env.root) / "backups" / "scale" / env.name / started
    store_release(report, folder, env, storage=storage, kind="scale")
