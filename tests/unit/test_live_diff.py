"""The live diff's decisions, with the server's answers played by a dict (the real server's are
exercised in tests/e2e/test_drift_e2e.py): create / update / delete / manifest-only, the drift
(who else owns a changed field, the release's own ``helm`` manager left out), ownership notes,
and masking (a literal password in application.yml, a Secret's data) in the diff text."""

from __future__ import annotations

import copy

import pytest
import yaml

from kestra_ops.adapters import kube_objects as ko
from kestra_ops.workflows.deploy import live_diff as ld

NS = "kestra-ns"


def cm(data: dict, name: str = "kestra-config", **meta) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": NS, **meta}, "data": data}


def manifest(*objs: dict) -> str:
    return "---\n".join(yaml.safe_dump(o) for o in objs)


class Server:
    """Live objects by (kind, name); apply = the applied object's fields over the live ones."""

    def __init__(self, *live: dict, conflicts=()):
        self.live = {(o["kind"], o["metadata"]["name"]): ld.owned(o, "kestra", NS) for o in live}
        self.conflicts = list(conflicts)

    def install(self, monkeypatch):
        monkeypatch.setattr(ko, "Resources", lambda kube: None)
        monkeypatch.setattr(ko, "read", lambda kube, res, obj, ns: copy.deepcopy(
            self.live.get((obj["kind"], obj["metadata"]["name"]))))
        monkeypatch.setattr(ko, "preview_apply", self.apply)

    def apply(self, kube, res, obj, ns, *, manager, force):
        assert manager == "helm"
        live = self.live[(obj["kind"], obj["metadata"]["name"])]
        if not force and self.conflicts:
            return ko.ApplyPreview(None, list(self.conflicts))
        merged = copy.deepcopy(live)
        for key, value in obj.items():
            merged[key] = ({**merged.get(key, {}), **value} if isinstance(value, dict)
                           else value)
        merged["metadata"]["resourceVersion"] = "999"  # server-kept fields never show
        return ko.ApplyPreview(merged)


def run(monkeypatch, server: Server, rendered: str, stored: str = ""):
    server.install(monkeypatch)
    return ld.live_diff(object(), rendered, stored, release="kestra", namespace=NS)


def test_unchanged_when_live_matches_the_render(monkeypatch):
    obj = cm({"application.yml": "a: 1\n"})
    diff = run(monkeypatch, Server(obj), manifest(obj), manifest(obj))
    assert not diff.changed and diff.unchanged == 1 and diff.against == "the live objects"


def test_out_of_band_change_is_an_update_with_its_writer(monkeypatch):
    rendered = cm({"application.yml": "grace: 5m\n"})
    live = cm({"application.yml": "grace: 4m\n"})
    conflicts = [ko.FieldConflict(".data.application.yml", "kestra-ops"),
                 ko.FieldConflict(".metadata.labels.x", "helm")]  # the release's own: not drift
    server = Server(live, conflicts=conflicts)
    server.live[("ConfigMap", "kestra-config")]["metadata"]["managedFields"] = [
        {"manager": "kestra-ops", "operation": "Update", "time": "2026-12-05T10:00:00Z"}]
    diff = run(monkeypatch, server, manifest(rendered), manifest(rendered))
    (change,) = diff.changes
    assert change.action == "update" and change.scope == "live"
    assert "-    grace: 4m" in change.diff and "+    grace: 5m" in change.diff
    assert diff.drift == ["ConfigMap/kestra-config .data.application.yml changed by kestra-ops "
                          "(Update, 2026-12-05T10:00:00Z)"]
    assert "resourceVersion" not in change.diff and "managedFields" not in change.diff


def test_missing_object_is_created_and_a_deleted_one_is_named(monkeypatch):
    obj = cm({"a": "1"})
    diff = run(monkeypatch, Server(), manifest(obj), manifest(obj))
    assert [(c.action, c.name) for c in diff.changes] == [("create", "kestra-config")]
    assert any("deleted outside Helm" in n for n in diff.notes)


def test_object_dropped_from_the_chart_is_deleted_when_live(monkeypatch):
    kept, dropped = cm({"a": "1"}), cm({"b": "2"}, name="old")
    diff = run(monkeypatch, Server(kept, dropped), manifest(kept), manifest(kept, dropped))
    assert [(c.action, c.name) for c in diff.changes] == [("delete", "old")]
    gone = run(monkeypatch, Server(kept), manifest(kept), manifest(kept, dropped))
    assert not gone.changed  # already gone: nothing to delete


def test_manifest_only_change_keeps_the_old_diff(monkeypatch):
    old, new = cm({"a": "1"}), cm({"a": "2"})
    diff = run(monkeypatch, Server(new), manifest(new), manifest(old))
    (change,) = diff.changes
    assert change.scope == "manifest" and change.diff.startswith("--- release manifest")


def test_an_object_of_another_release_is_noted(monkeypatch):
    obj = cm({"a": "1"})
    server = Server(obj)
    server.live[("ConfigMap", "kestra-config")]["metadata"]["annotations"][
        "meta.helm.sh/release-name"] = "other"
    diff = run(monkeypatch, server, manifest(obj), manifest(obj))
    assert any("belongs to release other" in n for n in diff.notes)


@pytest.mark.parametrize("kind", ["ConfigMap", "Secret"])
def test_credentials_never_reach_the_diff_text(monkeypatch, kind):
    before, after = "password: hunter2-old\nuser: a\n", "password: hunter2-new\nuser: a\n"
    live, rendered = cm({"application.yml": before}), cm({"application.yml": after})
    live["kind"] = rendered["kind"] = kind
    diff = run(monkeypatch, Server(live), manifest(rendered), manifest(rendered))
    text = diff.text() + str(diff.to_dict())
    assert diff.changed and "hunter2" not in text
    assert "masked sha256:" in text
