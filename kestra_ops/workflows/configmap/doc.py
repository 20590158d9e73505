"""The server's application.yml inside ConfigMap kestra-config: parse, patch with Helm's merge
rules, check with Kestra's rules, diff with secrets masked, and carry a change into values.

The chart renders application.yml from the values' top-level ``datasources`` and ``kestra``
sections, so a path in the document is the same path in the values.
"""

from __future__ import annotations

import copy
import difflib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from kestra_ops.errors import InvalidInput, OperationFailed
from kestra_ops.redact import MASK, literal_secrets, redact
from kestra_ops.values.findings import Finding, Report, json_path
from kestra_ops.yamlio import YamlDoc, load_yaml_file, load_yaml_text, to_plain
from kestra_ops.values.merge import Merged, merge_docs, parse_set

SECTIONS = ("datasources", "kestra")
GRACE = ("standalone", "terminationGracePeriodSeconds")


class PatchRefused(OperationFailed):
    """The patched configuration breaks a Kestra rule; nothing was written."""

    def __init__(self, message: str, report: Report):
        super().__init__(message, hint="fix the patch; `kestra-ops values rules` explains each "
                                       "rule")
        self.report = report


def parse_app(text: str, name: str) -> Any:
    """application.yml text -> ruamel mapping (guarded loader: line/col kept for findings)."""
    data = load_yaml_text(text, name)
    if data is None:
        from ruamel.yaml.comments import CommentedMap

        return CommentedMap()
    if not isinstance(data, dict):
        raise OperationFailed(f"{name}: application.yml is not a mapping")
    return data


def dump_app(data: Any) -> str:
    """application.yml as Helm's toYaml writes it (2-space maps, unindented lists), so a
    document Helm rendered comes back byte for byte when nothing changed."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=2, offset=0)
    buf = io.StringIO()
    yaml.dump(data, buf)
    return buf.getvalue()


@dataclass
class Patch:
    """A change to application.yml: an optional YAML patch document, then ``--set``s."""

    file: Path | None = None
    sets: tuple[str, ...] = ()

    def load(self) -> YamlDoc | None:
        if self.file is None:
            return None
        doc = load_yaml_file(self.file)
        if doc.data is not None and not isinstance(doc.data, dict):
            raise InvalidInput(f"{doc.name}: a patch is a mapping of application.yml keys")
        return doc

    def overlay(self) -> Any:
        """The whole change as one document, ``null`` kept (it deletes, in values too)."""
        from ruamel.yaml.comments import CommentedMap

        out = CommentedMap()
        doc = self.load()
        if doc is not None and doc.data:
            overlay_into(out, doc.data)
        for expr in self.sets:
            overlay_into(out, parse_set(expr))
        return out

    def top_keys(self) -> set[str]:
        return {str(k) for k in self.overlay()}


def apply_patch(live: Any, name: str, patch: Patch) -> Merged:
    """Merge the patch into the live document with Helm's rules (maps merge, lists replace,
    null deletes); every node remembers where it came from (the ConfigMap, the patch file, a
    --set)."""
    docs = [YamlDoc(Path(name), live, name)]
    extra = patch.load()
    if extra is not None:
        docs.append(extra)
    if not patch.sets and (extra is None or not extra.data):
        raise InvalidInput("nothing to patch: give --set KEY=VALUE or a non-empty --file")
    return merge_docs(docs, patch.sets)


def overlay_into(dst: dict, src: dict) -> None:
    """Layer ``src`` onto ``dst`` as a later values layer would be written: maps merge, other
    values (``null`` included: a values overlay deletes with an explicit null) replace."""
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            overlay_into(dst[key], value)
        else:
            dst[key] = copy.deepcopy(value)


def rules_input(plain: dict, grace_seconds: int | None) -> dict:
    values = {k: plain[k] for k in SECTIONS if k in plain}
    if grace_seconds is not None:
        values[GRACE[0]] = {GRACE[1]: grace_seconds}
    return values


def check_rules(before: dict, merged: Merged, env: str, target: str,
                grace_seconds: int | None) -> Report:
    """Kestra's rules (as `values validate`) on the patched document. Errors the patch
    introduces refuse it (:class:`PatchRefused`); errors the live ConfigMap already had are
    reported as warnings so a patch can still fix one of them."""
    from kestra_ops.values.rules_platform import run_rules

    had = {(h.rule, h.path) for h in run_rules(rules_input(before, grace_seconds), env)
           if h.severity == "error"}
    report = Report(target=target, env=env, layers=list(merged.layers))
    for hit in run_rules(rules_input(merged.plain, grace_seconds), env):
        severity, message = hit.severity, hit.message
        if severity == "error" and (hit.rule, hit.path) in had:
            severity, message = "warning", f"{message} (already so in the live ConfigMap)"
        where = merged.locate(hit.path)
        if hit.path[:1] == GRACE[:1]:
            where = merged.locate(())
        report.findings.append(Finding(hit.rule, severity, message, json_path(hit.path),
                                       where, hit.hint))
    if report.errors:
        raise PatchRefused(f"the patched application.yml breaks {report.errors} rule(s); "
                           "nothing was written", report)
    return report


def _get(data: Any, path: tuple) -> Any:
    for part in path:
        if not isinstance(data, (dict, list)):
            return None
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _set(data: Any, path: tuple, value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


def masked_diff(old: dict, new: dict, old_label: str, new_label: str) -> str:
    """Unified diff of two application.yml documents with every literal secret masked; a
    secret that changed shows as ``****** (changed)``."""
    old_m, new_m = _tokens(redact(old)), _tokens(redact(new))
    for path in literal_secrets(new):
        if _get(old, path) != _get(new, path) and _get(new_m, path) == _MASKED:
            _set(new_m, path, _CHANGED)
    lines = difflib.unified_diff(dump_app(old_m).splitlines(keepends=True),
                                 dump_app(new_m).splitlines(keepends=True), old_label, new_label)
    # tokens dump as plain scalars; the mask itself would be quoted ('*' starts an alias)
    return "".join(lines).replace(_CHANGED, f"{MASK} (changed)").replace(_MASKED, MASK)


_MASKED, _CHANGED = "__kestra_ops_masked__", "__kestra_ops_masked_changed__"


def _tokens(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _tokens(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_tokens(v) for v in data]
    return _MASKED if data == MASK else data


def changed_keys(old: Any, new: Any, path: tuple = ()) -> list[str]:
    """Dotted paths of every added, removed or changed leaf (names only, never values)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in list(old) + [k for k in new if k not in old]:
            if key not in new or key not in old:
                out.append(".".join(map(str, path + (key,))))
            else:
                out.extend(changed_keys(old[key], new[key], path + (key,)))
        return out
    return [] if old == new else [".".join(map(str, path)) or "."]


def leaf_keys(data: Any, path: tuple = ()) -> list[str]:
    if isinstance(data, dict) and data:
        return [k for key, value in data.items() for k in leaf_keys(value, path + (key,))]
    return [".".join(map(str, path))] if path else []


def persist(overlay_path: Path, patch: Patch) -> list[str]:
    """Write the change into the values overlay (comments and key order kept, atomic write).
    Returns the dotted keys written."""
    from kestra_ops.fileio import write_atomic
    from kestra_ops.workflows.values import dump_yaml

    doc = load_yaml_file(overlay_path)
    if doc.data is None:
        from ruamel.yaml.comments import CommentedMap

        doc.data = CommentedMap()
    if not isinstance(doc.data, dict):
        raise InvalidInput(f"{doc.name}: not a mapping of values; cannot persist the change")
    change = patch.overlay()
    overlay_into(doc.data, change)
    secret = bool(literal_secrets(to_plain(doc.data)))
    mode = overlay_path.stat().st_mode & 0o777
    write_atomic(overlay_path, dump_yaml(doc.data), secret=secret or mode == 0o600)
    return leaf_keys(to_plain(change))


def drift(values_plain: dict, app_plain: dict) -> list[str]:
    """Keys where the env's merged values and the live application.yml still differ."""
    rendered = {k: values_plain[k] for k in SECTIONS if k in values_plain}
    return changed_keys(rendered, {k: app_plain[k] for k in SECTIONS if k in app_plain})


def outside_sections(keys: Iterable[str]) -> list[str]:
    return sorted(k for k in keys if k not in SECTIONS)
