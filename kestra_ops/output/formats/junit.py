"""JUnit XML: a test suite for the command (one testcase per item, or per step when the report
has no items: fail -> failure, skip -> skipped, warn -> passed with the warning in system-out),
plus one suite per validated target (one testcase per rule family)."""

from __future__ import annotations


def render(report, *, color: bool = False, quiet: bool = False) -> str:
    import datetime
    import socket

    from kestra_ops.output.findings import junit_suites
    from kestra_ops.output.junit import Case, Suite, render as render_suites

    suites = []
    units = report.items or report.steps
    if units:
        props = {k: str(v) for k, v in (("env", report.env),
                                        ("namespace", report.data.get("namespace")))
                 if v is not None}
        suite = Suite(f"kestra-ops {report.command}" + (f" {report.env}" if report.env else ""),
                      timestamp=datetime.datetime.now(datetime.timezone.utc),
                      hostname=socket.gethostname(), properties=props)
        classname = f"kestra-ops.{report.command.replace(' ', '.')}" + (
            f".{report.env}" if report.env else "")
        for unit in units:
            name = getattr(unit, "id", None) or unit.name
            reason = getattr(unit, "reason", None) or getattr(unit, "detail", "")
            details = list(getattr(unit, "details", []))
            case = Case(name, classname, unit.seconds,
                        output="\n".join([f"{unit.status}: {reason}", *details]))
            if unit.status in ("fail", "interrupted"):
                case.failure, case.failure_type = reason or unit.status, f"{report.command}/{name}"
                case.failure_text = "\n".join([reason, *details])
            elif unit.status == "skip" or (unit.status == "warn"
                                           and str(reason).startswith("skipped")):
                case.skipped = reason or "skipped"
            suite.cases.append(case)
        suites.append(suite)
    suites += junit_suites(report.findings)
    seconds = report.data.get("seconds")
    return render_suites(suites, f"kestra-ops {report.command}",
                         seconds=seconds if isinstance(seconds, (int, float)) else None)
