"""What config patch / restore / backups report: :class:`ConfigChange` (the workflow's own record,
no secret value in it: the diff is masked) turned into a :class:`kestra_ops.results.Report` whose
``data`` keeps the commands' JSON keys (changed, keys, diff, backup, uploaded,
resource_version_before/after, restarted, rollout_seconds, persisted, restored_from, findings)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kestra_ops import chart
from kestra_ops.results import FAIL, Report, Section, Table, worst
from kestra_ops.values.findings import Report as Findings


@dataclass
class ConfigChange:
    action: str  # patch | restore
    env: str
    namespace: str
    configmap: str = chart.CONFIGMAP
    changed: bool = False
    keys: list[str] = field(default_factory=list)
    diff: str = ""
    backup: str | None = None
    uploaded: str | None = None
    resource_version_before: str | None = None
    resource_version_after: str | None = None
    restarted: bool = False
    rollout_seconds: float | None = None
    persisted: str | None = None
    restored_from: str | None = None
    auto_restored: bool = False
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    findings: Findings | None = None

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items()
               if k not in ("findings", "warnings", "notes", "auto_restored")}
        out["findings"] = [f.to_dict() for f in self.findings.findings] if self.findings else []
        return out


def finish(report: Report, change: ConfigChange, *, error: str | None = None) -> Report:
    """Fill ``report`` from ``change``: exit 1 with ``error`` (refused by a rule, or a failed
    rollout put back), else 0."""
    report.data = change.to_dict()
    report.warnings += change.warnings
    if change.findings is not None:
        report.findings.append(change.findings)
    if change.diff:
        report.sections.append(Section("", change.diff.splitlines()))
    if change.changed:
        report.details += [f"~ {key}" for key in change.keys]
        report.details.append(f"backup: {change.backup}" + (
            f" (copied to {change.uploaded})" if change.uploaded else ""))
    if change.restarted:
        report.details.append(f"restarted deployment {chart.DEPLOYMENT}: ready in "
                              f"{change.rollout_seconds:.1f}s")
    if change.persisted:
        report.details.append(f"persisted to {change.persisted}")
    report.details += [f"note: {note}" for note in change.notes]
    report.status = worst([s.status for s in report.steps] + ([FAIL] if error else []))
    if error:
        report.exit_code, report.message = 1, error
        report.outcome = "reverted" if change.auto_restored else (
            "failed" if change.changed else "refused")
        return report
    if not change.changed:
        report.outcome, report.message = "unchanged", f"configmap {change.configmap}: unchanged"
        return report
    report.outcome = "restored" if change.action == "restore" else "patched"
    what = (f"restored configmap {change.configmap} from {change.restored_from}"
            if change.action == "restore" else f"patched configmap {change.configmap}")
    report.message = (f"{what} in {change.namespace}: {len(change.keys)} key(s) changed "
                      f"(resourceVersion {change.resource_version_before} -> "
                      f"{change.resource_version_after})")
    return report


def backups_report(env, found: list) -> Report:
    """config backups: a table newest first; JSON ``backups`` (name, path, time, size, env,
    namespace, resourceVersion)."""
    from kestra_ops.workflows.configmap.backups import folder

    report = Report("config backups", env.name, title=f"config backups {env.name}: "
                    f"{folder(env.root)}", outcome="listed")
    report.data["backups"] = [b.to_dict(env.root) for b in found]
    if not found:
        report.message = f"no backups in {folder(env.root)}"
        return report
    report.tables.append(Table(["NAME", "TIME (UTC)", "SIZE", "RESOURCEVERSION"], [
        [b.name, b.taken.strftime("%Y-%m-%d %H:%M:%S"), _size(b.size),
         b.resource_version or "-"] for b in found]))
    report.message = f"{len(found)} backup(s) of configmap {chart.CONFIGMAP}, newest first"
    return report


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
