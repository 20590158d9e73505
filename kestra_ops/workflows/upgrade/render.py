"""The upgrade plan as a :class:`~kestra_ops.results.Report`: each step with what it runs, why
it can or cannot be undone and its sources; the values diff; the findings (values, flows)."""

from __future__ import annotations

from kestra_ops.results import FAIL, PASS, WARN, Report, Section


def step_lines(step, image: str | None = None) -> list[str]:
    """The text of one step of the path."""
    out = []
    if step.reversible:
        out.append("  reversible: the previous image can start again on what it leaves "
                   "(a failed release is rolled back with helm)")
    else:
        out.append("  IRREVERSIBLE: needs a verified backup set first; a failure after it "
                   "restores that set and the previous version")
        out += [f"    - {why}" for why in step.irreversible_because]
    for m in step.migrations:
        if m.kind == "automatic":
            out.append(f"  migration (automatic at start-up) {m.id}: {m.what}")
        else:
            how = "Kestra stopped first" if m.stop else "Kestra running"
            out.append(f"  migration (Kubernetes Job{', image ' + image if image else ''}, "
                       f"{how}) {m.id}: {' '.join(m.command)}: {m.what}")
        out.append(f"    source: {m.source}")
        if m.unsure:
            out.append(f"    unsure: {m.unsure}")
    for c in step.config:
        change = f"renamed to {c.to}" if c.change == "renamed" else c.change
        out.append(f"  config {c.key}: {change}: {c.what}")
        out.append(f"    source: {c.source}" + (f" (unsure: {c.unsure})" if c.unsure else ""))
    for n in step.chart:
        out.append(f"  chart {n.id}: {n.what}")
        out.append(f"    source: {n.source}" + (f" (unsure: {n.unsure})" if n.unsure else ""))
    for n in step.behaviour:
        out.append(f"  behaviour {n.id}: {n.what}")
        out.append(f"    source: {n.source}")
    if step.flows:
        out.append(f"  flow syntax changed: {len(step.flows)} feature(s) "
                   f"({', '.join(f.id for f in step.flows)}); see the flows findings")
    out += [f"  unsure: {u}" for u in step.unsure]
    out.append("  sources: " + "; ".join(step.sources))
    return out


def plan_report(plan) -> Report:
    report = Report("upgrade plan", plan.env)
    run = plan.running
    seen = ", ".join(x for x in (f"Kestra reports {run.api}" if run.api else "",
                                 f"image {run.image}" if run.image else "") if x)
    report.title = (f"upgrade plan {plan.env}: {run.version} -> {plan.target}"
                    + (f" ({seen})" if seen else ""))
    report.warnings += list(run.notes) + list(plan.warnings)
    irreversible = [s for s in plan.steps if not s.reversible]
    for i, step in enumerate(plan.steps, 1):
        image = plan.tag if i == 1 else f"v{step.end}"
        report.sections.append(Section(f"step {i}: {step.name}", step_lines(step, image)))
    if plan.overlay is not None:
        diff = plan.overlay.diff()
        report.sections.append(Section(
            f"values change of step 1 ({plan.overlay.shown})",
            diff.splitlines() if diff else ["  none: the overlay already names this tag"]))
    gates = []
    if irreversible:
        gates.append(f"  a complete backup set younger than {plan.backup_max_age} that passes "
                     "verify (upgrade run offers to take one: --take-backup)")
        if plan.requires:
            gates.append(f"  {plan.requires} runs Kestra {irreversible[0].end} with a passing "
                         "check in its release or upgrade reports (upgrade.requires)")
    if gates:
        report.sections.append(Section("gates of the irreversible steps", gates))
    report.details += list(plan.notes)
    report.findings = [r for r in (plan.values, plan.flows) if r is not None]
    report.status, report.exit_code = status_of(plan)
    if not plan.steps:
        report.message = f"upgrade plan {plan.env}: already at {plan.target}; nothing to do"
    else:
        nxt = plan.steps[0]
        report.message = (f"upgrade plan {plan.env}: {len(plan.steps)} step(s), "
                          f"{len(irreversible)} irreversible; next: kestra-ops upgrade run "
                          f"--env {plan.env} --to {plan.target} runs {nxt.name}")
        if report.exit_code:
            report.message += "; flows or values must change first (see the findings)"
    report.data = {
        "from": str(run.version), "to": str(plan.target), "running": run.to_dict(),
        "steps": [s.to_dict() for s in plan.steps], "image_tag": plan.tag or None,
        "values_diff": plan.overlay.diff() if plan.overlay is not None else None,
        "overlay": plan.overlay.shown if plan.overlay is not None else None,
        "requires": plan.requires, "backup_max_age": plan.backup_max_age,
        "notes": list(plan.notes)}
    return report


def status_of(plan) -> tuple[str, int]:
    errors = sum(r.errors for r in (plan.values, plan.flows) if r is not None)
    warnings = sum(r.warnings for r in (plan.values, plan.flows) if r is not None)
    if errors:
        return FAIL, 1
    return (WARN if warnings or any(not s.reversible for s in plan.steps) else PASS), 0
