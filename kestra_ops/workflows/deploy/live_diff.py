"""The deploy diff against the LIVE objects, as ``kubectl diff --server-side`` computes it.

For every object the chart renders (hooks aside, as helm keeps them apart):

* not live: ``create`` (and, when the release's manifest has it, a note that it was deleted
  outside Helm);
* live: a server-side apply of the rendered object as field manager ``helm`` (the manager Helm 4
  applies with), dry run, forced: the server returns the object as it would be after the deploy;
  compared with the live object (server-kept fields such as managedFields, resourceVersion and
  status left out), any difference is an ``update``. When there is one, the same apply without
  ``force`` names every field the render would take from another writer (``kestra-ops config
  patch``, ``kubectl edit``, ...), with its writer, operation and time from managedFields: the
  drift this deploy reverts. On Helm 4 those fields make ``helm upgrade`` fail unless it runs with
  ``--force-conflicts``;
* objects in the release's manifest that the chart no longer renders and that are still live:
  ``delete``.

An object whose live and applied forms agree but whose rendered text differs from the release's
stored manifest (a value already set live by ``config patch --persist``, a field the server
normalises, a field Helm 3's three-way merge removes) is still a change, of scope ``manifest``:
its diff is the release's manifest against the render, so nothing the old manifest-to-render
diff showed is lost. Conflicts with ``helm`` itself (a release written
by Helm 3's client-side apply) are not drift.
"""

from __future__ import annotations

import difflib

from kestra_ops.adapters import kube_objects as ko
from kestra_ops.workflows.deploy.diff import (ManifestDiff, ObjectChange, diff_manifests, dump_lines,
                                       parse_objects)

HELM_MANAGER = "helm"
_SERVER_FIELDS = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp",
                  "selfLink")
_SERVER_ANNOTATIONS = ("deployment.kubernetes.io/revision",
                       "kubectl.kubernetes.io/last-applied-configuration")


def owned(obj: dict, release: str, namespace: str) -> dict:
    """``obj`` with the ownership metadata helm writes on every object of a release."""
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta["annotations"] = {**(meta.get("annotations") or {}),
                           "meta.helm.sh/release-name": release,
                           "meta.helm.sh/release-namespace": namespace}
    meta["labels"] = {**(meta.get("labels") or {}), "app.kubernetes.io/managed-by": "Helm"}
    out["metadata"] = meta
    return out


def comparable(obj: dict | None) -> dict | None:
    """The object without what the server keeps for itself (compared, and shown in diffs)."""
    if obj is None:
        return None
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _SERVER_FIELDS}
    notes = {k: v for k, v in (meta.get("annotations") or {}).items()
             if k not in _SERVER_ANNOTATIONS}
    if notes:
        meta["annotations"] = notes
    else:
        meta.pop("annotations", None)
    out["metadata"] = meta
    return out


def _unified(old: dict | None, new: dict | None, label: str, old_name: str = "live") -> str:
    return "".join(difflib.unified_diff(dump_lines(old), dump_lines(new), f"{old_name} {label}",
                                        f"new {label}"))


def live_diff(kube, rendered: str, stored: str, *, release: str, namespace: str,
              progress=None) -> ManifestDiff:
    """Compare the render (``helm template``) with the live objects; ``stored`` is the release's
    manifest (``helm get manifest``; empty before the first install)."""
    desired = parse_objects(rendered, skip_hooks=True)
    previous = parse_objects(stored, skip_hooks=True)
    manifest_changed = {(c.kind, c.name) for c in diff_manifests(stored, rendered).changes}
    resources = ko.Resources(kube)
    result = ManifestDiff(against="the live objects")
    for key in sorted(set(desired) | set(previous)):
        kind, _, name = key
        label = f"{kind}/{name}"
        if progress is not None:
            progress.update(f"comparing {label} with the live object")
        obj = desired.get(key)
        if obj is None:  # dropped from the chart: helm deletes it
            live = ko.read(kube, resources, previous[key], namespace)
            if live is not None:
                result.changes.append(ObjectChange(kind, name, "delete",
                                                   _unified(comparable(live), None, label)))
            continue
        obj = owned(obj, release, namespace)
        live = ko.read(kube, resources, obj, namespace)
        if live is None:
            result.changes.append(ObjectChange(kind, name, "create", _unified(None, obj, label)))
            if key in previous:
                result.notes.append(f"{label} is in release {release} but not in the cluster "
                                    "(deleted outside Helm): this deploy creates it again")
            continue
        _ownership_note(result, live, label, release)
        after = ko.preview_apply(kube, resources, obj, namespace, manager=HELM_MANAGER,
                                 force=True).merged
        before, after = comparable(live), comparable(after)
        if before != after:
            drift = _drift(kube, resources, obj, live, namespace)
            result.changes.append(ObjectChange(kind, name, "update",
                                               _unified(before, after, label), tuple(drift)))
        elif (kind, name) in manifest_changed:
            result.changes.append(ObjectChange(
                kind, name, "update", _unified(previous.get(key), desired[key], label,
                                               "release manifest"), scope="manifest"))
        else:
            result.unchanged += 1
    return result


def _drift(kube, resources, obj: dict, live: dict, namespace: str) -> list[ko.FieldConflict]:
    preview = ko.preview_apply(kube, resources, obj, namespace, manager=HELM_MANAGER,
                               force=False)
    conflicts = [c for c in preview.conflicts if c.manager != HELM_MANAGER]
    return ko.with_writers(conflicts, live)


def _ownership_note(result: ManifestDiff, live: dict, label: str, release: str) -> None:
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    owner = annotations.get("meta.helm.sh/release-name")
    if owner != release:
        whose = f"release {owner}" if owner else "no Helm release"
        result.notes.append(f"{label} exists and belongs to {whose}: helm refuses to adopt it "
                            f"into release {release} (delete it, or label and annotate it for "
                            "the release)")
