"""plan: the offline main job — render + validate + chart lint, one summary."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kestra_ops.errors import KestraOpsError
from kestra_ops.settings import Environment
from kestra_ops.values.findings import Report


@dataclass
class Step:
    name: str
    status: str  # ok | warning | failed | skipped
    detail: str
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "detail": self.detail,
                "seconds": round(self.seconds, 3)}


@dataclass
class PlanResult:
    env: str
    steps: list[Step] = field(default_factory=list)
    reports: list[Report] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if any(r.unreadable for r in self.reports):
            return 2
        return 1 if any(s.status == "failed" for s in self.steps) else 0

    def to_dict(self) -> dict:
        return {"env": self.env, "ok": self.exit_code == 0, "exit_code": self.exit_code,
                "steps": [s.to_dict() for s in self.steps],
                "reports": [r.to_dict() for r in self.reports]}


def _status(report: Report) -> str:
    if report.errors or report.unreadable:
        return "failed"
    return "warning" if report.warnings else "ok"


def plan(env: Environment, *, kube_version: str | None = None, helm: str | None = None,
         on_step=None) -> PlanResult:
    from kestra_ops.defaults import DEFAULT_KUBE_VERSION
    from kestra_ops.workflows.chart_lint import lint_chart
    from kestra_ops.values.merge import load_layers
    from kestra_ops.workflows.values import validate_env

    result = PlanResult(env.name)

    def step(s: Step) -> None:
        result.steps.append(s)
        if on_step:
            on_step(s)

    started = time.perf_counter()
    try:  # the merge is what render writes; plan needs only its outcome, not the YAML text
        merged = load_layers(env.values_paths)
        step(Step("render", "ok", f"{' + '.join(merged.layers)} -> {len(merged.origins)} values",
                  time.perf_counter() - started))
    except KestraOpsError as err:  # an unreadable layer (YamlLoadError) among them
        step(Step("render", "failed", str(err), time.perf_counter() - started))

    started = time.perf_counter()
    report = validate_env(env)
    result.reports.append(report)
    step(Step("validate", _status(report),
              "unreadable values" if report.unreadable else
              f"{report.errors} error(s), {report.warnings} warning(s)",
              time.perf_counter() - started))
    if report.unreadable:
        step(Step("chart lint", "skipped", "values could not be read"))
        return result

    started = time.perf_counter()
    lint = lint_chart(env, kube_version=kube_version or DEFAULT_KUBE_VERSION, helm=helm)
    result.reports.append(lint.report)
    kinds = ", ".join(sorted({m.doc.get("kind", "?") for m in lint.manifests}))
    step(Step("chart lint", _status(lint.report),
              f"{len(lint.manifests)} manifests ({kinds}) against Kubernetes {lint.kube_version}; "
              f"{lint.report.errors} error(s), {lint.report.warnings} warning(s)",
              time.perf_counter() - started))
    return result
