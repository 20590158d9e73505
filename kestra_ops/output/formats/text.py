"""Text for a terminal: the title, the steps and items with their marks and times, the findings
(file:line:col), tables, titled sections, details and warnings, then the one-line message.
``quiet`` keeps only what failed and the message."""

from __future__ import annotations

from kestra_ops.output import MARKS


def render(report, *, color: bool = False, quiet: bool = False) -> str:
    from kestra_ops.output.cells import one_line

    lines: list[str] = []
    if report.title and not quiet:
        lines.append(report.title)
    for step in report.steps:
        if quiet and step.status not in ("fail", "interrupted"):
            continue
        detail = f": {one_line(step.detail, 300)}" if step.detail else ""
        lines.append(f"  {_mark(step.status, color):11} {step.name} ({step.seconds:.1f}s){detail}")
    width = max((len(i.id) for i in report.items), default=0)
    for item in report.items:
        if quiet and item.status not in ("fail", "interrupted"):
            continue
        tries = f", {item.attempts} attempts" if item.attempts > 1 else ""
        lines.append(f"  {_mark(item.status, color):4}  {item.id:{width}}  "
                     f"{one_line(item.reason, 300)} ({item.seconds:.2f}s{tries})")
        if item.status != "pass" or getattr(item, "always_details", False):
            lines += [f"        {'':{width}}  {one_line(d, 300)}" for d in item.details]
            if item.fix:
                lines.append(f"        {'':{width}}  fix: {item.fix}")
    # with steps or items to sum them up, only targets with findings; else every target's line
    targets = [r for r in report.findings if r.findings or r.unreadable
               or not (report.steps or report.items)]
    if targets:
        from kestra_ops.output.findings import render_text

        lines.append(render_text(targets, color=color))
    for table in report.tables:
        lines += _table(table)
    for section in report.sections:
        if section.title:
            lines.append(f"  {section.title}:")
        lines += [f"    {line}" if section.title else line for line in section.lines]
    lines += [f"  {line}" for line in report.details]
    lines += [f"  warning: {w}" for w in report.warnings]
    if report.message:
        lines.append(report.message)
    return "\n".join(lines)


def _mark(status: str, color: bool) -> str:
    mark = MARKS.get(status, status.upper())
    if not color:
        return mark
    import click

    fg = {"pass": "green", "warn": "yellow", "fail": "red", "interrupted": "red"}.get(status)
    return click.style(mark, fg=fg, bold=status != "pass") + " " * max(0, 4 - len(mark))


def _table(table) -> list[str]:
    from kestra_ops.output.cells import one_line

    rows = [[one_line(str(c), 100) for c in row] for row in table.rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(table.columns)]
    out = [table.title] if table.title else []
    fmt = lambda cells: "  ".join(f"{c:{w}}" for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    out.append("   " + fmt(table.columns))
    out += ["   " + fmt(row) for row in rows]
    return out
