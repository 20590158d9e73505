"""Diff rendered manifests against the live release's, object by object, Secrets masked.

Both sides are Helm-rendered text (``helm get manifest`` for the live release, ``helm template``
for the change), so server-set fields never show up as noise. Hooks are left out of the
rendered side because ``helm get manifest`` leaves them out too (and from the live side, should
a manifest carry them).
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field

Key = tuple  # (kind, namespace, name)


@dataclass(frozen=True)
class ObjectChange:
    kind: str
    name: str
    action: str  # create | update | delete
    diff: str

    def to_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "action": self.action, "diff": self.diff}


@dataclass
class ManifestDiff:
    changes: list[ObjectChange] = field(default_factory=list)
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def summary(self) -> str:
        if not self.changes:
            return f"no changes ({self.unchanged} objects unchanged)"
        counts = {a: sum(c.action == a for c in self.changes) for a in ("create", "update", "delete")}
        return ", ".join(f"{n} to {a}" for a, n in counts.items() if n) + \
            f", {self.unchanged} unchanged"

    def text(self) -> str:
        return "\n".join(c.diff for c in self.changes)

    def to_dict(self) -> dict:
        return {"changed": self.changed, "summary": self.summary(), "unchanged": self.unchanged,
                "changes": [c.to_dict() for c in self.changes]}


def parse_objects(text: str, *, skip_hooks: bool = False) -> dict[Key, dict]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    objects: dict[Key, dict] = {}
    for doc in yaml.load_all(text or "", Loader=loader):
        if not isinstance(doc, dict) or not doc.get("kind"):
            continue
        meta = doc.get("metadata") or {}
        if skip_hooks and "helm.sh/hook" in (meta.get("annotations") or {}):
            continue
        objects[(doc["kind"], meta.get("namespace") or "", meta.get("name") or "")] = doc
    return objects


def mask_secrets(obj: dict) -> dict:
    """A Secret's values replaced by a short digest: a change shows, the value never does."""
    if obj.get("kind") != "Secret":
        return obj
    masked = dict(obj)
    for section in ("data", "stringData"):
        if isinstance(obj.get(section), dict):
            masked[section] = {k: f"<masked sha256:{hashlib.sha256(str(v).encode()).hexdigest()[:8]}>"
                               for k, v in obj[section].items()}
    return masked


def _dump(obj: dict | None) -> list[str]:
    import yaml

    if obj is None:
        return []
    return yaml.safe_dump(mask_secrets(obj), sort_keys=True, default_flow_style=False).splitlines(
        keepends=True)


def diff_manifests(live: str, desired: str) -> ManifestDiff:
    before = parse_objects(live, skip_hooks=True)
    after = parse_objects(desired, skip_hooks=True)
    result = ManifestDiff()
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            result.unchanged += 1
            continue
        kind, _, name = key
        action = "create" if old is None else "delete" if new is None else "update"
        label = f"{kind}/{name}"
        text = "".join(difflib.unified_diff(_dump(old), _dump(new), f"live {label}",
                                            f"new {label}"))
        result.changes.append(ObjectChange(kind, name, action, text))
    return result
