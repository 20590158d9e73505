"""plan: the offline main job — render + validate + chart lint, one summary."""

from __future__ import annotations

from kestra_ops.errors import KestraOpsError
from kestra_ops.results import FAIL, PASS, SKIP, WARN, Recorder, Report, Step, worst
from kestra_ops.settings import Environment
from kestra_ops.values.findings import Report as Findings

Step = Step  # re-exported: workflows built on the old ``plan.Step`` import it from here


def _status(report: Findings) -> str:
    if report.errors or report.unreadable:
        return FAIL
    return WARN if report.warnings else PASS


def plan(env: Environment, *, kube_version: str | None = None, helm: str | None = None,
         progress=None) -> Report:
    """Render, validate and lint ``env``'s chart; exit 0 all pass (warnings allowed), 1 a step
    failed, 2 a values file could not be read. ``progress`` mirrors each step as it ends."""
    from kestra_ops.defaults import DEFAULT_KUBE_VERSION
    from kestra_ops.workflows.deploy.chart_lint import start_lint

    # helm lint and helm template (read-only, offline) run while we render and validate; the
    # chart lint step judges their outcome (or raises their error) as when it started them
    pending = start_lint(env, kube_version=kube_version or DEFAULT_KUBE_VERSION, helm=helm)
    from kestra_ops.workflows.values import validate_env

    result = Report("plan", env.name, title=f"plan {env.name} (namespace {env.namespace}, "
                    f"release {env.release}, chart "
                    f"{env.chart if env.chart_source == 'project' else env.chart_source})")
    _origins(result, env)
    rec = Recorder(result, progress)
    with rec.step("render") as step:
        try:  # the merge is what render writes; plan needs only its outcome, not the YAML text
            step.detail = _rendered(env)
        except KestraOpsError as err:  # an unreadable layer (YamlLoadError) among them
            step.fail(str(err))

    with rec.step("validate") as step:
        report = validate_env(env)
        result.findings.append(report)
        step.detail = ("unreadable values" if report.unreadable else
                       f"{report.errors} error(s), {report.warnings} warning(s)")
        _mark(step, _status(report))
    if report.unreadable:
        pending.wait()
        result.steps.append(Step("chart lint", SKIP, "values could not be read"))
        return _finish(result, env)

    with rec.step("chart lint") as step:
        lint = pending.result()
        result.findings.append(lint.report)
        kinds = ", ".join(sorted({m.doc.get("kind", "?") for m in lint.manifests}))
        step.detail = (f"{len(lint.manifests)} manifests ({kinds}) against Kubernetes "
                       f"{lint.kube_version}; {lint.report.errors} error(s), "
                       f"{lint.report.warnings} warning(s)")
        _mark(step, _status(lint.report))
    return _finish(result, env)


def _origins(result: Report, env: Environment) -> None:
    """Say which chart and values layers plan used: the project's own or the packaged ones
    (text: a ``chart:`` and a ``values:`` line; JSON: ``chart`` and ``values``)."""
    from kestra_ops import packaged

    chart, layers = env.chart_path, env.values_paths
    for key, source, shown in (("chart", env.chart_source, _shown(chart)),
                               ("values", env.values_source, " + ".join(map(_shown, layers)))):
        result.details.append(f"{key}: {packaged.label() if source == packaged.SOURCE else shown}")
    result.data["chart"] = {"source": env.chart_source, "path": str(chart)}
    result.data["values"] = {"source": env.values_source, "layers": [str(p) for p in layers]}
    if packaged.SOURCE in (env.chart_source, env.values_source):
        from kestra_ops import __version__

        result.data["packaged_version"] = __version__


def _shown(path) -> str:
    """``./charts/kestra`` for a path below the working directory, else the path itself."""
    from pathlib import Path

    try:
        return f"./{Path(path).relative_to(Path.cwd()).as_posix()}"
    except ValueError:
        return str(path)


def _rendered(env: Environment) -> str:
    """The render step's outcome: the layers merged, and how many values they set. It derives
    from the layers' bytes alone, so it is kept in the content-addressed cache (key: the layers'
    paths and bytes, the values code and this file), as validation reports are: an unchanged
    environment is not parsed again. An unreadable layer raises, and is never cached."""
    from pathlib import Path

    from kestra_ops import cache

    paths = list(env.values_paths)
    key = cache.content_key(("plan render",), [*paths, Path(__file__)])
    hit = cache.get_json("plan-render", key)
    if isinstance(hit, dict) and isinstance(hit.get("detail"), str):
        return hit["detail"]
    from kestra_ops.values.merge import load_layers

    merged = load_layers(paths)
    detail = f"{' + '.join(merged.layers)} -> {len(merged.origins)} values"
    cache.put_json("plan-render", key, {"detail": detail})
    return detail


def _mark(step, status: str) -> None:
    if status == FAIL:
        step.fail()
    elif status == WARN:
        step.warn()


def _finish(result: Report, env: Environment) -> Report:
    if any(r.unreadable for r in result.findings):
        result.exit_code, verdict = 2, "INVALID INPUT"
    elif any(s.status == FAIL for s in result.steps):
        result.exit_code, verdict = 1, "FAILED"
    else:
        result.exit_code, verdict = 0, "ok"
    result.status = worst(s.status for s in result.steps)
    result.message = f"plan {env.name}: {verdict}"
    result.data["ok"] = result.exit_code == 0
    return result
