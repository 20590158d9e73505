"""The offline Kubernetes schema check and its per-object verdict cache (deploy/kube_schema.py).

A verdict read from the cache gives the same finding as the validator itself; an unchanged
object's verdict is read without importing kubernetes-validate (the ~0.3 s plan paid on every
run); anything the key cannot vouch for is validated afresh.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kestra_ops import cache
from kestra_ops.workflows.deploy import kube_schema
from kestra_ops.workflows.deploy.chart_lint import Manifest

ROOT = Path(__file__).resolve().parents[2]
CHART = Path("/charts/kestra")
VERSION = "1.33.0"


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("KESTRA_OPS_NO_CACHE", raising=False)
    monkeypatch.setenv("KESTRA_OPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "cache"


def service(**spec) -> Manifest:
    return Manifest("kestra/templates/service.yaml", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "kestra"},
        "spec": {"ports": [{"port": 8080, "name": "http"}], **spec}})


MANIFESTS = [
    service(),
    service(clusterIPz="None"),  # unknown field: strict schema error
    service(ports=[{"port": "eighty"}]),  # wrong type, under a list index
    Manifest("kestra/templates/widget.yaml", {"apiVersion": "example.com/v1", "kind": "Widget",
                                              "metadata": {"name": "w"}}),
]


def findings(manifests, version=VERSION):
    return [f.to_dict() if hasattr(f, "to_dict") else vars(f)
            for f in kube_schema.kube_schema_findings(manifests, version, CHART)]


def entries(folder: Path) -> list[Path]:
    return sorted((folder / kube_schema.KIND).glob("*.json"))


def test_a_cached_verdict_gives_the_same_findings(cache_dir):
    first = findings(MANIFESTS)
    rules = [f["rule"] for f in first]
    assert rules == ["k8s/schema", "k8s/schema", "k8s/unknown-kind"], first
    assert len(entries(cache_dir)) == len(MANIFESTS)
    assert findings(MANIFESTS) == first  # every verdict from the cache
    os.environ["KESTRA_OPS_NO_CACHE"] = "1"
    try:
        assert findings(MANIFESTS) == first  # and from the validator itself
    finally:
        del os.environ["KESTRA_OPS_NO_CACHE"]


def test_an_unchanged_object_is_not_validated_again(cache_dir):
    """Fails without the cache: every run imported kubernetes-validate (and jsonschema)."""
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from tests.unit.test_kube_schema import CHART, MANIFESTS, VERSION\n"
        "from kestra_ops.workflows.deploy.kube_schema import kube_schema_findings\n"
        "found = kube_schema_findings(MANIFESTS, VERSION, CHART)\n"
        "print(json.dumps([[f.rule, f.message, f.path, str(f.location.file), f.hint]"
        " for f in found]))\n"
        "print('kubernetes_validate' in sys.modules, 'jsonschema' in sys.modules)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run():
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, cwd=ROOT, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.splitlines()

    cold, warm = run(), run()
    assert cold[1] == "True True"
    assert warm[1] == "False False"
    assert warm[0] == cold[0] and "Service/kestra: spec: " in cold[0]


def test_the_key_covers_the_object_and_the_version(cache_dir):
    doc = service().doc
    key = kube_schema.verdict_key(doc, VERSION)
    assert key and key == kube_schema.verdict_key(json.loads(json.dumps(doc)), VERSION)
    assert kube_schema.verdict_key(doc, "1.32.0") != key
    assert kube_schema.verdict_key(service(type="NodePort").doc, VERSION) != key
    assert kube_schema.verdict_key({**doc, "spec": {"ports": [{"port": 8080.0}]}}, VERSION) != \
        kube_schema.verdict_key({**doc, "spec": {"ports": [{"port": 8080}]}}, VERSION)
    assert kube_schema.verdict_key({**doc, "x": True}, VERSION) != \
        kube_schema.verdict_key({**doc, "x": 1}, VERSION)


@pytest.mark.parametrize("odd", [datetime.date(2024, 1, 1), {1: "a"}, (1, 2), {"a"}, b"x"])
def test_an_object_that_is_not_plain_json_is_never_cached(cache_dir, odd):
    doc = {**service().doc, "metadata": {"name": "kestra", "labels": {"x": odd}}}
    assert kube_schema.verdict_key(doc, VERSION) is None
    kube_schema.kube_schema_findings([Manifest("kestra/templates/s.yaml", doc)], VERSION, CHART)
    assert entries(cache_dir) == []


@pytest.mark.parametrize("entry", [
    {"verdict": "ok", "extra": 1}, {"verdict": "maybe"}, {"verdict": "error", "path": "spec"},
    {"verdict": "error", "path": [], "message": 3}, ["ok"], "ok", None,
])
def test_a_malformed_entry_is_validated_again(cache_dir, entry):
    bad = service(clusterIPz="None")
    expected = findings([bad])
    key = kube_schema.verdict_key(bad.doc, VERSION)
    cache.put_json(kube_schema.KIND, key, entry)
    assert findings([bad]) == expected
    assert cache.get_json(kube_schema.KIND, key)["verdict"] == "error"


def test_a_forged_ok_is_not_trusted(cache_dir):
    """An entry rewritten to "ok" without the per-user key (the MAC) is a miss."""
    bad = service(clusterIPz="None")
    expected = findings([bad])
    (entry,) = entries(cache_dir)
    mac, _, _ = entry.read_text().partition("\n")
    entry.write_text(mac + "\n" + json.dumps({"verdict": "ok"}))
    assert findings([bad]) == expected
