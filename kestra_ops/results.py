"""The one result model: what every command returns and every output format renders.

* one status set, :data:`STATUSES`: ``pass``, ``warn``, ``fail``, ``skip``, ``interrupted``;
* :class:`Step`: one step of a workflow (validate, preflight, helm upgrade...), timed;
* :class:`Item`: one judged thing (a checklist item, a preflight check, a doctor finding) with its
  reason, evidence lines and evidence data;
* :class:`Table`, :class:`Section`: what a report shows beyond steps and items (a history, a diff);
* the validation findings stay :class:`kestra_ops.values.findings.Finding` (file:line:col), grouped
  in :class:`kestra_ops.values.findings.Report` per validated target and carried here;
* :class:`Report`: the whole result of a command, with its exit code. Its JSON form is the
  standard keys plus the command's own fields (``data``), so adding a field needs no renderer;
* :class:`Recorder`: runs steps into a report while mirroring them on the progress output (or on
  nothing: the silent default), and knows the step running now (for Ctrl-C).

Renderers live in :mod:`kestra_ops.output` (one module per format); nothing here formats text.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

TYPE_CHECKING = False  # (not typing.TYPE_CHECKING: importing typing costs ~2 ms a run)
if TYPE_CHECKING:
    from typing import Any, Iterable, Iterator

PASS, WARN, FAIL, SKIP, INTERRUPTED = "pass", "warn", "fail", "skip", "interrupted"
STATUSES = (PASS, WARN, FAIL, SKIP, INTERRUPTED)
_RANK = {SKIP: 0, PASS: 1, WARN: 2, FAIL: 3, INTERRUPTED: 4}


def worst(statuses: Iterable[str]) -> str:
    """The overall status of several (``pass`` for none; ``skip`` only when all are skipped)."""
    found = list(statuses)
    if not found:
        return PASS
    top = max(found, key=lambda s: _RANK[s])
    return PASS if top == SKIP and len(set(found)) > 1 else top


def of_severity(severity: str) -> str:
    """A finding's severity as a status (``error`` -> fail, ``warning`` -> warn)."""
    return {"error": FAIL, "warning": WARN}.get(severity, PASS)


@dataclass
class Step:
    """One step of a workflow: its name, status, detail and how long it took."""

    name: str
    status: str = PASS
    detail: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "detail": self.detail,
                "seconds": round(self.seconds, 3)}


@dataclass
class Item:
    """One judged thing: status, why, evidence lines (``details``) and evidence as data."""

    id: str
    status: str
    reason: str
    details: list[str] = field(default_factory=list)
    seconds: float = 0.0
    data: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 1
    code: str = ""  # a machine-readable cause (e.g. "stuck")
    fix: str = ""  # what to do about it, when the judge knows
    always_details: bool = False  # text: the details also under a pass (one line per part)

    @property
    def ok(self) -> bool:
        return self.status not in (FAIL, INTERRUPTED)

    def to_dict(self) -> dict[str, Any]:
        out = {"id": self.id, "status": self.status, "reason": self.reason,
               "seconds": round(self.seconds, 3), "attempts": self.attempts,
               "details": list(self.details), "items": list(self.data)}
        if self.code:
            out["code"] = self.code
        if self.fix:
            out["fix"] = self.fix
        return out


@dataclass
class Table:
    """Rows under column headings (text: aligned columns; JSON: lists)."""

    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    title: str = ""

    def to_dict(self) -> dict:
        return {"title": self.title, "columns": list(self.columns),
                "rows": [list(r) for r in self.rows]}


@dataclass
class Section:
    """A titled block of lines (a diff, the evidence of a failure)."""

    title: str
    lines: list[str] = field(default_factory=list)


@dataclass
class Report:
    """The result of one command (see the module doc). ``exit_code`` is the documented one."""

    command: str
    env: str | None = None
    title: str = ""  # the text form's first line
    status: str = PASS
    outcome: str = ""  # the command's own word for how it ended ("deployed", "rolled-back")
    message: str = ""  # the text form's last line
    exit_code: int = 0
    steps: list[Step] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    items_key: str = "checks"  # the JSON key of the items
    findings: list = field(default_factory=list)  # values.findings.Report, per target
    tables: list[Table] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # the command's own JSON fields

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"command": self.command, "env": self.env, "status": self.status,
                               "message": self.message, "exit_code": self.exit_code}
        if self.outcome:
            out["outcome"] = self.outcome
        if self.steps:
            out["steps"] = [s.to_dict() for s in self.steps]
        if self.items:
            out[self.items_key] = [i.to_dict() for i in self.items]
        if self.findings:
            out["reports"] = [r.to_dict() for r in self.findings]
        if self.details:
            out["details"] = list(self.details)
        out["warnings"] = list(self.warnings)
        for key, value in self.data.items():
            out.setdefault(key, value)
        return out


class Recorder:
    """Runs steps into ``report.steps`` and mirrors each on ``progress`` (anything with
    ``step``/``info``/``update``, such as :class:`kestra_ops.output.progress.Progress`; None is
    silent). ``with rec.step(name) as status:`` records ``pass`` unless the block calls
    ``status.fail()`` (or ``warn()``), ``fail`` when it raises, ``interrupted`` on Ctrl-C; nested
    steps are shown but not recorded. ``current`` names the top-level step running now."""

    def __init__(self, report: Report, progress=None):
        self.report = report
        self.progress = progress
        self.current: str | None = None
        self._depth = 0

    @property
    def tty(self) -> bool:
        return bool(getattr(self.progress, "tty", False))

    @property
    def quiet(self) -> bool:
        return self.progress is None or bool(getattr(self.progress, "quiet", False))

    def info(self, message: str) -> None:
        if self.progress is not None:
            self.progress.info(message)

    def update(self, message: str) -> None:
        if self.progress is not None:
            self.progress.update(message)

    @contextmanager
    def step(self, name: str) -> Iterator["Outcome"]:
        top = self._depth == 0
        self._depth += 1
        if top:
            self.current = name
        started = time.perf_counter()
        outcome = Outcome()
        try:
            with self._shown(name, outcome):
                yield outcome
        except BaseException as err:
            if top:
                from kestra_ops.errors import KestraOpsError

                status = INTERRUPTED if isinstance(err, KeyboardInterrupt) else FAIL
                detail = str(err) if isinstance(err, KestraOpsError) else (
                    "interrupted (Ctrl-C)" if status == INTERRUPTED else "internal error")
                self.report.steps.append(Step(name, status, outcome.detail or detail,
                                              time.perf_counter() - started))
            raise
        else:
            if top:
                self.report.steps.append(Step(name, outcome.status, outcome.detail,
                                              time.perf_counter() - started))
        finally:
            self._depth -= 1
            if top:
                self.current = None

    @contextmanager
    def _shown(self, name: str, outcome: "Outcome"):
        if self.progress is None:
            yield
            return
        with self.progress.step(name) as shown:
            yield
            outcome.copy_to(shown)

    def run(self, name: str, fn, describe=lambda value: "", failed=lambda value: False):
        """``fn()`` as step ``name``; ``describe(value)`` is its detail, ``failed(value)`` marks a
        step whose work ran but whose verdict is a failure."""
        with self.step(name) as outcome:
            value = fn()
            outcome.detail = describe(value)
            if failed(value):
                outcome.fail()
        return value


class Outcome:
    """What a step ended with when it did not raise (see :class:`Recorder`)."""

    def __init__(self) -> None:
        self.status = PASS
        self.detail = ""

    def fail(self, detail: str | None = None) -> None:
        self.status = FAIL
        if detail is not None:
            self.detail = detail

    def warn(self, detail: str | None = None) -> None:
        if self.status == PASS:
            self.status = WARN
        if detail is not None:
            self.detail = detail

    def skip(self, detail: str | None = None) -> None:
        self.status = SKIP
        if detail is not None:
            self.detail = detail

    def copy_to(self, other) -> None:
        """Mirror the verdict on a progress step's own status handle."""
        if self.status == FAIL and hasattr(other, "fail"):
            other.fail()
        elif self.status == WARN and hasattr(other, "warn"):
            other.warn()
        elif self.status == SKIP and hasattr(other, "skip"):
            other.skip()
