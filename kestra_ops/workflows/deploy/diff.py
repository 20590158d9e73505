"""Diff rendered manifests object by object, Secrets masked; the result model of every deploy diff.

:func:`diff_manifests` compares two Helm-rendered texts (``helm get manifest`` of the release,
``helm template`` of the change), so server-set fields never show up as noise. Hooks are left out
of both sides because ``helm get manifest`` leaves them out too. The deploy diff against the LIVE
objects (:mod:`kestra_ops.workflows.deploy.live_diff`) fills the same :class:`ManifestDiff`, plus the
out-of-band changes it found (``drift``) and notes.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
from dataclasses import dataclass, field

Key = tuple  # (kind, namespace, name)


@dataclass(frozen=True)
class ObjectChange:
    kind: str
    name: str
    action: str  # create | update | delete
    diff: str
    drift: tuple = ()  # FieldConflict: the fields this change takes back from another writer
    # "live": the live object changes; "manifest": only the release's stored manifest differs
    # (the live object already matches the render, as far as a server-side apply tells)
    scope: str = "live"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "action": self.action, "diff": self.diff,
                "scope": self.scope, "drift": [d.to_dict() for d in self.drift]}


@dataclass
class ManifestDiff:
    changes: list[ObjectChange] = field(default_factory=list)
    unchanged: int = 0
    against: str = "the release's manifest"  # or "the live objects"
    notes: list[str] = field(default_factory=list)  # e.g. an object helm will not adopt

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    @property
    def drift(self) -> list[str]:
        """One line per field changed outside Helm that this deploy reverts."""
        return [f"{c.kind}/{c.name} {d.describe()}" for c in self.changes for d in c.drift]

    def summary(self) -> str:
        if not self.changes:
            return f"no changes ({self.unchanged} objects unchanged)"
        counts = {a: sum(c.action == a for c in self.changes) for a in ("create", "update", "delete")}
        return ", ".join(f"{n} to {a}" for a, n in counts.items() if n) + \
            f", {self.unchanged} unchanged"

    def text(self) -> str:
        lines = [c.diff for c in self.changes]
        if self.drift:
            lines.append("changed outside Helm (this deploy reverts it and takes the fields "
                         "back):")
            lines += [f"  {line}" for line in self.drift]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(line.rstrip("\n") for line in lines)

    def to_dict(self) -> dict:
        return {"changed": self.changed, "summary": self.summary(), "unchanged": self.unchanged,
                "against": self.against, "drift": self.drift, "notes": list(self.notes),
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


def dump_lines(obj: dict | None) -> list[str]:
    """The object as YAML lines for a diff: a multi-line string (a ConfigMap's application.yml)
    as a literal block, one line per line; Secret values and every credential-like value as
    digests (:func:`kestra_ops.redact.fingerprint_line`)."""
    import yaml

    from kestra_ops.redact import fingerprint_line

    if obj is None:
        return []
    text = yaml.dump(mask_secrets(obj), Dumper=_block_dumper(), sort_keys=True,
                     default_flow_style=False, allow_unicode=True)
    return [fingerprint_line(line) for line in text.splitlines(keepends=True)]


@functools.lru_cache(maxsize=1)
def _block_dumper():
    import yaml

    class BlockDumper(yaml.SafeDumper):
        pass

    def string(dumper, value: str):
        style = "|" if "\n" in value and not any(
            ln != ln.rstrip() for ln in value.splitlines()) else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    BlockDumper.add_representer(str, string)
    return BlockDumper



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
        text = "".join(difflib.unified_diff(dump_lines(old), dump_lines(new), f"live {label}",
                                            f"new {label}"))
        result.changes.append(ObjectChange(kind, name, action, text))
    return result
