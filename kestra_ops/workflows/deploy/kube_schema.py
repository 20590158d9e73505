"""Rendered objects against the Kubernetes OpenAPI schemas, offline (kubernetes-validate, strict).

Importing kubernetes-validate (and jsonschema, referencing, its schema files) and checking ten
objects costs ~0.3 s, three times ``helm template``. The verdict on one object depends only on
the object, the Kubernetes version, the installed kubernetes-validate and jsonschema (their
schemas and messages) and this code, so it is kept in the content-addressed cache
(:mod:`kestra_ops.cache`, kind ``k8s-schema``; MAC-checked like every entry) under a key over all
of those: a plan or chart lint of an unchanged object reads its verdict instead of importing the
validator. The verdict is the validator's outcome (no error; the error's path and message; no
schema for the kind), never a finding: the finding (its manifest name, template file and hint) is
made fresh each time, so it is the same from a hit as from a miss. An object that is not plain
JSON (a YAML timestamp, a set, a non-string key) is never cached; neither is a verdict that did
not come back (a version kubernetes-validate does not know raises, as before).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

try:  # hashlib's own BLAKE2 without loading OpenSSL, as kestra_ops.cache does
    from _blake2 import blake2b as _digest
except ImportError:  # pragma: no cover - a Python built without it
    from hashlib import blake2b as _digest

from kestra_ops.values.findings import Finding

KIND = "k8s-schema"
OK, ERROR, UNKNOWN = "ok", "error", "unknown-kind"
_CODE = Path(__file__)
# module -> its distribution (what writes the verdicts and their messages; PyYAML parses for
# the manifest rules, whose judged results chart lint caches with these versions in the key)
_DISTRIBUTIONS = {"kubernetes_validate": "kubernetes_validate", "jsonschema": "jsonschema",
                  "referencing": "referencing", "yaml": "pyyaml"}


def kube_schema_findings(manifests: list, kube_version: str, chart: Path) -> list[Finding]:
    """Each rendered object against the Kubernetes OpenAPI schemas of ``kube_version``."""
    from kestra_ops import cache

    findings = []
    prefix = _key_prefix(kube_version)
    for manifest in manifests:
        key = verdict_key(manifest.doc, kube_version, prefix)
        verdict = cache.get_json(KIND, key) if key else None
        if not _well_formed(verdict):
            verdict = _validate(manifest.doc, kube_version)
            if key:
                cache.put_json(KIND, key, verdict)
        finding = _finding(manifest, verdict, kube_version, chart)
        if finding is not None:
            findings.append(finding)
    return findings


def _validate(doc: dict, kube_version: str) -> dict:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(doc, kube_version, strict=True)
    except kubernetes_validate.ValidationError as err:
        return {"verdict": ERROR, "path": list(err.path), "message": err.message}
    except kubernetes_validate.SchemaNotFoundError:
        return {"verdict": UNKNOWN}
    return {"verdict": OK}


def _finding(manifest, verdict: dict, kube_version: str, chart: Path) -> Finding | None:
    where = manifest.location(chart)
    if verdict["verdict"] == ERROR:
        path = ".".join(str(p) for p in verdict["path"]) or "(root)"
        return Finding("k8s/schema", "error", f"{manifest.name}: {path}: {verdict['message']}",
                       "$." + path if verdict["path"] else "$", where,
                       f"Kubernetes {kube_version} API schema")
    if verdict["verdict"] == UNKNOWN:
        return Finding("k8s/unknown-kind", "warning",
                       f"{manifest.name}: no schema for {manifest.doc.get('apiVersion')}"
                       f" in Kubernetes {kube_version}", "$", where)
    return None


def _well_formed(verdict: Any) -> bool:
    if not isinstance(verdict, dict):
        return False
    kind = verdict.get("verdict")
    if kind in (OK, UNKNOWN):
        return len(verdict) == 1
    return (kind == ERROR and set(verdict) == {"verdict", "path", "message"}
            and isinstance(verdict["message"], str) and isinstance(verdict["path"], list)
            and all(type(p) in (str, int) for p in verdict["path"]))


def verdict_key(doc: Any, kube_version: str, prefix: str | None = None) -> str | None:
    """The cache key of ``doc``'s verdict under ``kube_version``; None (do not cache) when the
    object is not plain JSON or the validator's installation cannot be identified. ``prefix``:
    :func:`_key_prefix` of ``kube_version``, computed once for many objects."""
    prefix = prefix if prefix is not None else _key_prefix(kube_version)
    if not prefix or not plain_json(doc):
        return None
    digest = _digest(prefix.encode() + b"\0")
    digest.update(json.dumps(doc, sort_keys=True, separators=(",", ":"),
                             ensure_ascii=False).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _key_prefix(kube_version: str) -> str:
    """Everything but the object in a verdict's key (the cache's code fingerprint and working
    folder, the Kubernetes version, the validator's installation, this file's bytes); "" when
    the installation cannot be identified or this file read."""
    from kestra_ops import cache

    found = installed()
    if found is None:
        return ""
    return cache.content_key((KIND, "strict", kube_version, found), [_CODE]) or ""


def plain_json(node: Any, depth: int = 0) -> bool:
    """Only dict (string keys), list, str, int, float, bool and None: JSON tells them apart."""
    if depth > 200:
        return False
    kind = type(node)
    if kind is dict:
        return all(type(k) is str and plain_json(v, depth + 1) for k, v in node.items())
    if kind is list:
        return all(plain_json(v, depth + 1) for v in node)
    return kind in (str, int, float, bool, type(None))


_INSTALLED: list = []


def installed() -> str | None:
    """The installed versions of the validator and what writes its messages, read from their
    distributions' metadata folder names (no import: that import is what a hit saves)."""
    if _INSTALLED:
        return _INSTALLED[0]
    from importlib.util import find_spec

    names, listed = [], {}
    for module, distribution in _DISTRIBUTIONS.items():
        try:
            spec = find_spec(module)
        except (ImportError, ValueError):
            spec = None
        origin = spec.origin if spec is not None else None
        if not origin:
            _INSTALLED.append(None)
            return None
        folder = str(Path(origin).parent.parent)
        if folder not in listed:
            try:
                listed[folder] = [n.lower() for n in os.listdir(folder)
                                  if n.endswith((".dist-info", ".egg-info"))]
            except OSError:
                listed[folder] = []
        found = [n for n in listed[folder] if n.startswith(distribution + "-")]
        if len(found) != 1:  # none, or several (a broken install): do not guess
            _INSTALLED.append(None)
            return None
        names.append(f"{origin}|{found[0]}")
    _INSTALLED.append("\n".join(names))
    return _INSTALLED[0]
