"""chart lint: helm lint --strict, helm template, Kubernetes schemas offline, our manifest rules.

The rendered text (``helm template``) is kept in the result: a release diffs it against the live
objects instead of rendering the chart a second time."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from kestra_ops.defaults import DEFAULT_KUBE_VERSION
from kestra_ops.results import FAIL, PASS, WARN
from kestra_ops.results import Report as Result
from kestra_ops.settings import Environment
from kestra_ops.values.findings import Finding, Report
from kestra_ops.yamlio import Location

HELM_LINE = re.compile(r"^\[(?P<level>ERROR|WARNING|INFO)\]\s*(?P<where>[^:]*):\s*(?P<msg>.*)$")
SOURCE = re.compile(r"^# Source: (?P<src>\S+)", re.M)
HELM_ERROR = re.compile(r"^Error:?\s+")
HELM_NOISE = re.compile(r"^(Use --debug flag\b|Error: \d+ chart\(s\) linted, \d+ chart\(s\) failed$)")


@dataclass
class Manifest:
    source: str  # the template, e.g. kestra/templates/deployment.yaml
    doc: dict

    @property
    def name(self) -> str:
        return f"{self.doc.get('kind')}/{(self.doc.get('metadata') or {}).get('name')}"

    def location(self, chart: Path) -> Location:
        """The template that rendered this object, as a path inside ``chart``."""
        rel = self.source.split("/", 1)[1] if "/" in self.source else self.source
        return Location(str(chart / rel))


@dataclass
class LintResult:
    report: Report
    manifests: list[Manifest] = field(default_factory=list)
    kube_version: str = DEFAULT_KUBE_VERSION
    rendered: str | None = None  # helm template's output (None: it failed)

    def to_report(self) -> Result:
        """``chart lint``: the findings (file:line:col), then ``chart lint ENV: N manifests
        [kinds] against Kubernetes V: ok|FAILED``. Exit 0 clean, 1 any error."""
        from kestra_ops import __version__
        from kestra_ops.values.findings import exit_code

        report, env = self.report, self.report.env
        code = exit_code([report])
        kinds = ", ".join(m.name for m in self.manifests)
        return Result(
            "chart lint", env, findings=[report], exit_code=code,
            status=FAIL if code else WARN if report.warnings else PASS,
            message=f"chart lint {env}: {len(self.manifests)} manifests [{kinds}] against "
                    f"Kubernetes {self.kube_version}: {'FAILED' if code else 'ok'}",
            data={"tool": "kestra-ops", "version": __version__, "ok": code == 0,
                  "kube_version": self.kube_version,
                  "manifests": [m.name for m in self.manifests]})


def helm_error(result) -> str:
    """helm's own error, on one line: stderr from its last ``Error:`` line on (the adapter's
    :func:`~kestra_ops.adapters.helm.error_line`: a multi-line error keeps its detail), else
    stdout's last ``Error`` line (helm lint prints its reason there), else the last line of
    either; never the advice or the tally helm adds ("Use --debug flag to render out invalid
    YAML", which hid "chart requires kubeVersion: ..."; "Error: 1 chart(s) linted, 1 chart(s)
    failed")."""
    from kestra_ops.adapters.helm import error_line

    err, out = _lines(result.stderr), _lines(result.stdout)
    if any(line.startswith("Error:") for line in err):
        return error_line("\n".join(err)) or "failed"
    errors = [line for line in out if HELM_ERROR.match(line)]
    if errors:
        return HELM_ERROR.sub("", errors[-1], count=1).strip() or "failed"
    return (err or out or ["failed"])[-1]


def _lines(text: str) -> list[str]:
    lines = (line.strip() for line in (text or "").splitlines())
    return [line for line in lines if line and not HELM_NOISE.match(line)]


def parse_manifests(text: str) -> list[Manifest]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    out = []
    for chunk in re.split(r"^---\s*$", text, flags=re.M):
        m = SOURCE.search(chunk)
        doc = yaml.load(chunk, Loader=loader)
        if isinstance(doc, dict) and doc:
            out.append(Manifest(m["src"] if m else "<rendered>", doc))
    return out


def lint_chart(env: Environment, *, kube_version: str = DEFAULT_KUBE_VERSION,
               helm=None) -> LintResult:
    """Lint ``env``'s chart with its values. ``helm``: a :class:`Helm`, a helm binary's path,
    or None."""
    return start_lint(env, kube_version=kube_version, helm=helm).result()


def start_lint(env: Environment, *, kube_version: str = DEFAULT_KUBE_VERSION,
               helm=None) -> "PendingLint":
    """Start ``helm lint --strict`` and ``helm template`` of ``env``'s chart at once (each waits
    for its own child process in a thread; helm reads the values files itself), for
    :meth:`PendingLint.result` to judge. Never raises: an error (no helm) is raised by
    ``result``, where :func:`lint_chart` raised it."""
    return PendingLint(env, kube_version, helm)


class PendingLint:
    """helm lint and helm template running side by side (read-only, offline)."""

    def __init__(self, env: Environment, kube_version: str, helm) -> None:
        self.env, self.kube_version = env, kube_version
        self._error: BaseException | None = None
        try:
            from kestra_ops import wiring

            self._helm = wiring.helm(env, helm=helm)
            getattr(self._helm, "executable", None)  # resolved here, not by two threads
        except Exception as err:  # noqa: BLE001 - raised again by result()
            self._error = err
            return
        chart, values = env.chart_path, list(env.values_paths)
        self._lint = _Background(lambda: self._helm.lint(chart, values, strict=True,
                                                         namespace=env.namespace))
        from kestra_ops.workflows.deploy.preflight_database import offline_api_versions

        apis = offline_api_versions(env)
        self._template = _Background(lambda: self._helm.template(
            chart, values, release=env.release, namespace=env.namespace,
            kube_version=kube_version, api_versions=apis))

    def wait(self) -> None:
        """Let both helm runs end (their outcome unused): nothing outlives the command."""
        if self._error is None:
            self._lint.join()
            self._template.join()

    def result(self) -> LintResult:
        if self._error is not None:
            raise self._error
        _prepare()  # while helm still runs
        return _judge(self.env, self.kube_version, self._lint.result(), self._template.result())


class _Background:
    """``fn()`` in a daemon thread (a daemon: a Ctrl-C while it waits on helm leaves nothing
    for the interpreter to join at exit); :meth:`result` returns its value or raises its
    error."""

    def __init__(self, fn) -> None:
        import threading

        self._value = self._error = None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True,
                                        name="kestra-ops-helm")
        self._thread.start()

    def _run(self, fn) -> None:
        try:
            self._value = fn()
        except BaseException as err:  # noqa: BLE001 - handed to the waiting thread
            self._error = err

    def join(self) -> None:
        self._thread.join()

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _prepare() -> None:
    """What judging helm's outcome needs first (the cache, the validator's installation),
    done while the main thread would only wait for helm."""
    from kestra_ops import cache  # noqa: F401
    from kestra_ops.workflows.deploy import kube_schema

    kube_schema.installed()


JUDGED = "chart-lint"  # the cache's kind for judged helm outcomes
_JUDGE_CODE = ("workflows/deploy/chart_lint.py", "workflows/deploy/kube_schema.py",
               "workflows/deploy/manifest_rules.py", "chart.py")


def _judge(env: Environment, kube_version: str, lint, rendered) -> LintResult:
    """:func:`_judge_afresh`, kept in the content-addressed cache: the key holds helm's exit
    codes and outputs byte for byte, the environment's name, chart and layers, the Kubernetes
    version, the schema validator's and PyYAML's installed versions and the code that judges (so
    a hit is the same result, without PyYAML, parsing or rules). helm itself always runs."""
    from kestra_ops import cache
    from kestra_ops.workflows.deploy.kube_schema import installed, plain_json

    found = installed()
    package = Path(__file__).resolve().parents[2]
    key = None if found is None else cache.content_key(
        (JUDGED, env.name, str(env.chart_path), *map(str, env.values_paths), kube_version, found,
         str(lint.returncode), lint.stdout, lint.stderr,
         str(rendered.returncode), rendered.stdout, rendered.stderr),
        [package / name for name in _JUDGE_CODE])
    hit = cache.get_json(JUDGED, key) if key else None
    if hit is not None:
        try:
            result = LintResult(Report.from_dict(hit["report"]), kube_version=kube_version,
                                manifests=[Manifest(src, doc) for src, doc in hit["manifests"]],
                                rendered=rendered.stdout if hit["rendered"] else None)
            if all(isinstance(m.source, str) and isinstance(m.doc, dict) for m in result.manifests):
                return result
        except (KeyError, TypeError, ValueError):
            pass  # not one of ours: judged afresh
    result = _judge_afresh(env, kube_version, lint, rendered)
    if key and all(plain_json(m.doc) for m in result.manifests):
        cache.put_json(JUDGED, key, {
            "report": result.report.to_dict(), "rendered": result.rendered is not None,
            "manifests": [[m.source, m.doc] for m in result.manifests]})
    return result


def _judge_afresh(env: Environment, kube_version: str, lint, rendered) -> LintResult:
    """The findings of helm lint's and helm template's outcomes, then of the rendered objects."""
    chart = env.chart_path
    values = list(env.values_paths)
    report = Report(target=f"chart:{env.name}", env=env.name,
                    layers=[str(p) for p in values])
    result = LintResult(report, kube_version=kube_version)
    chart_file = str(chart / "Chart.yaml")

    for line in (lint.stdout + "\n" + lint.stderr).splitlines():
        m = HELM_LINE.match(line.strip())
        if m and m["level"] != "INFO":
            sev = "error" if m["level"] == "ERROR" or not lint.ok else "warning"
            where = m["where"].strip() or "Chart.yaml"
            report.findings.append(Finding("helm/lint", sev, m["msg"].strip(), "$",
                                           Location(str(chart / where)) if where else Location(chart_file)))
    if not lint.ok and not report.findings:
        report.findings.append(Finding("helm/lint", "error", f"helm lint failed: {helm_error(lint)}",
                                       "$", Location(chart_file)))

    if not rendered.ok:
        report.findings.append(Finding("helm/template", "error",
                                       f"helm template: {helm_error(rendered)}", "$",
                                       Location(chart_file)))
        return result
    result.rendered = rendered.stdout
    result.manifests = parse_manifests(rendered.stdout)
    from kestra_ops.workflows.deploy.kube_schema import kube_schema_findings
    from kestra_ops.workflows.deploy.manifest_rules import manifest_findings

    report.findings.extend(kube_schema_findings(result.manifests, kube_version, chart))
    report.findings.extend(manifest_findings(result.manifests, env.name, chart))
    return result
