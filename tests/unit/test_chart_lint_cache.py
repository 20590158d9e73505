"""chart lint's judged outcome, cached by helm's exact outputs (deploy/chart_lint._judge).

helm always runs; what is derived from its outputs (parsing the manifests, the Kubernetes schema
verdicts, our manifest rules) is a pure function of those outputs and a few names, so it is read
back when every one of them is the same, and judged afresh when any differs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from kestra_ops import cache
from kestra_ops.adapters.helm_cli import HelmResult
from kestra_ops.settings import load_config
from kestra_ops.workflows.deploy import chart_lint

ROOT = Path(__file__).resolve().parents[2]
LINT = HelmResult(["helm", "lint"], 0, "==> Linting charts/kestra\n[INFO] Chart.yaml: icon is "
                  "recommended\n[WARNING] templates/x.yaml: odd\n\n1 chart(s) linted\n", "")
RENDERED = """---
# Source: kestra/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: kestra
spec:
  clusterIPz: None
  ports: [{port: 8080, name: http}]
---
# Source: kestra/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata: {name: kestra-standalone}
spec:
  selector: {matchLabels: {app: kestra}}
  template:
    metadata: {labels: {app: kestra}}
    spec:
      containers: [{name: kestra, image: "kestra/kestra:latest"}]
"""
TEMPLATE = HelmResult(["helm", "template"], 0, RENDERED, "")


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.delenv("KESTRA_OPS_NO_CACHE", raising=False)
    monkeypatch.setenv("KESTRA_OPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return load_config(ROOT / "kestra-ops.yaml").environment("production", environ={})


@pytest.fixture
def afresh(monkeypatch):
    """Counts the judgements made afresh (not read from the cache)."""
    calls = []
    real = chart_lint._judge_afresh

    def counting(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(chart_lint, "_judge_afresh", counting)
    return calls


def snapshot(result):
    return (result.report.to_dict(), [(m.source, m.doc) for m in result.manifests],
            result.rendered, result.kube_version, result.to_report().message)


def test_the_same_outputs_are_judged_once(env, afresh):
    first = chart_lint._judge(env, "1.33.0", LINT, TEMPLATE)
    rules = [f.rule for f in first.report.findings]
    assert {"helm/lint", "k8s/schema", "manifest/image-latest"} <= set(rules), rules
    again = chart_lint._judge(env, "1.33.0", LINT, TEMPLATE)
    assert len(afresh) == 1
    assert snapshot(again) == snapshot(first)


@pytest.mark.parametrize("change", [
    lambda e, k, l, t: (e, k, replace(l, stdout=l.stdout + "[ERROR] templates/y.yaml: bad\n"), t),
    lambda e, k, l, t: (e, k, replace(l, returncode=1), t),
    lambda e, k, l, t: (e, k, l, replace(t, stdout=t.stdout.replace("8080", "8081"))),
    lambda e, k, l, t: (e, k, l, replace(t, returncode=1, stdout="", stderr="Error: boom")),
    lambda e, k, l, t: (e, "1.30.0", l, t),
    lambda e, k, l, t: (replace(e, name="dev"), k, l, t),
    lambda e, k, l, t: (replace(e, chart=Path("/elsewhere/kestra")), k, l, t),
])
def test_any_other_input_is_judged_afresh(env, afresh, change):
    chart_lint._judge(env, "1.33.0", LINT, TEMPLATE)
    changed = change(env, "1.33.0", LINT, TEMPLATE)
    fresh = chart_lint._judge(*changed)
    assert len(afresh) == 2
    assert snapshot(fresh) == snapshot(chart_lint._judge_afresh(*changed))


@pytest.mark.parametrize("entry", [
    {}, {"report": {}, "rendered": True, "manifests": []}, [1, 2], "x",
    {"report": None, "rendered": True, "manifests": [["a", {}]]},
    {"report": {"target": "t", "env": "e", "layers": [], "unreadable": False, "findings": []},
     "rendered": True, "manifests": [["a", "not a doc"]]},
])
def test_an_entry_that_is_not_ours_is_judged_afresh(env, afresh, monkeypatch, entry):
    expected = snapshot(chart_lint._judge(env, "1.33.0", LINT, TEMPLATE))
    (path,) = (Path(cache.cache_dir()) / chart_lint.JUDGED).glob("*.json")
    cache.put_json(chart_lint.JUDGED, path.stem, entry)
    assert snapshot(chart_lint._judge(env, "1.33.0", LINT, TEMPLATE)) == expected
    assert len(afresh) == 2


def test_manifests_that_are_not_plain_json_are_not_cached(env, afresh):
    dated = replace(TEMPLATE, stdout=RENDERED.replace("name: kestra\n",
                                                      "name: kestra\n  labels: {at: 2024-01-01}\n",
                                                      1))
    chart_lint._judge(env, "1.33.0", LINT, dated)
    chart_lint._judge(env, "1.33.0", LINT, dated)
    assert len(afresh) == 2
    assert not list((Path(cache.cache_dir()) / chart_lint.JUDGED).glob("*.json"))
