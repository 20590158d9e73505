"""Pure helpers for the fake Kubernetes API: selectors, patch algorithms, API time formats.

Nothing here knows about HTTP or the store; errors are raised as ValueError subclasses and
translated into `Status` objects by the callers.
"""
from __future__ import annotations

import copy
import datetime as _dt
import re

# --------------------------------------------------------------------------- time formats

RFC3339_MICRO_LAYOUT = "2006-01-02T15:04:05.000000Z07:00"
_MICRO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$")
_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


class TimeFormatError(ValueError):
    """A timestamp the real API server's JSON decoder would refuse."""


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def fmt_time(t: _dt.datetime | None = None) -> str:
    """metav1.Time: RFC 3339, seconds precision, UTC."""
    return (t or utcnow()).astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_micro(t: _dt.datetime | None = None) -> str:
    """metav1.MicroTime: RFC 3339 with exactly six fractional digits, UTC."""
    return (t or utcnow()).astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: str) -> _dt.datetime:
    return _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def normalize_micro(value) -> str:
    """Validate like Go's time.Parse(RFC3339Micro) and re-render as the server would."""
    if not isinstance(value, str) or not _MICRO_RE.match(value):
        raise TimeFormatError(f'parsing time "{value}" as "{RFC3339_MICRO_LAYOUT}": '
                              f'cannot parse "{_tail(value)}" as ".000000"')
    return fmt_micro(_parse(value))


def normalize_time(value) -> str:
    """Validate like Go's time.Parse(RFC3339); the server keeps seconds precision."""
    if not isinstance(value, str) or not _TIME_RE.match(value):
        raise TimeFormatError(f'parsing time "{value}" as "2006-01-02T15:04:05Z07:00": '
                              f'cannot parse "{_tail(value)}" as "Z07:00"')
    return fmt_time(_parse(value))


def _tail(value) -> str:
    m = re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", str(value))
    return str(value)[m.end():] if m else str(value)


# --------------------------------------------------------------------------- label selectors

class SelectorError(ValueError):
    pass


_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VAL = r"[-A-Za-z0-9_.]*"
_SET_RE = re.compile(rf"^({_KEY})\s+(in|notin)\s*\(\s*([^()]*)\)$")
_CMP_RE = re.compile(rf"^({_KEY})\s*(==|=|!=|>|<)\s*({_VAL})$")
_EXISTS_RE = re.compile(rf"^(!?)\s*({_KEY})$")


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(text: str | None) -> list[tuple]:
    """Parse `a=b,c!=d,e in (x,y),f notin (z),g,!h,i>3` into requirements."""
    reqs = []
    for part in _split_top(text or ""):
        if m := _SET_RE.match(part):
            values = {v.strip() for v in m.group(3).split(",") if v.strip()}
            reqs.append((m.group(1), m.group(2), values))
        elif m := _CMP_RE.match(part):
            op = {"==": "=", "=": "="}.get(m.group(2), m.group(2))
            if op in "<>" and not m.group(3).isdigit():
                raise SelectorError(f"unable to parse requirement: for 'Gt', 'Lt' operators, the "
                                    f"value must be an integer")
            reqs.append((m.group(1), op, m.group(3)))
        elif m := _EXISTS_RE.match(part):
            reqs.append((m.group(2), "!" if m.group(1) else "exists", None))
        else:
            raise SelectorError(f"unable to parse requirement: found '{part}', expected: "
                                f"'=', '!=', '==', 'in', notin'")
    return reqs


def labels_match(reqs: list[tuple], labels: dict | None) -> bool:
    labels = labels or {}
    for key, op, val in reqs:
        have = key in labels
        cur = labels.get(key)
        ok = {
            "=": have and cur == val,
            "!=": not have or cur != val,
            "in": have and cur in (val or ()),
            "notin": not have or cur not in (val or ()),
            "exists": have,
            "!": not have,
            ">": have and str(cur).isdigit() and int(cur) > int(val or 0),
            "<": have and str(cur).isdigit() and int(cur) < int(val or 0),
        }[op]
        if not ok:
            return False
    return True


def selector_from_label_selector(sel: dict | None) -> list[tuple]:
    """metav1.LabelSelector (matchLabels/matchExpressions) -> requirements."""
    sel = sel or {}
    reqs = [(k, "=", v) for k, v in (sel.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for e in sel.get("matchExpressions") or []:
        reqs.append((e["key"], ops[e["operator"]], set(e.get("values") or [])))
    return reqs


def parse_field_selector(text: str | None, allowed: set[str]) -> list[tuple]:
    reqs = []
    for part in _split_top(text or ""):
        m = re.match(r"^([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)$", part)
        if not m:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        if m.group(1) not in allowed:
            raise SelectorError(f'field label not supported: {m.group(1)}')
        reqs.append((m.group(1), "!=" if m.group(2) == "!=" else "=", m.group(3)))
    return reqs


def fields_match(reqs: list[tuple], obj: dict) -> bool:
    for path, op, val in reqs:
        cur = obj
        for p in path.split("."):
            cur = cur.get(p) if isinstance(cur, dict) else None
        cur = "" if cur is None else str(cur).lower() if isinstance(cur, bool) else str(cur)
        if (cur == val) != (op == "="):
            return False
    return True


# --------------------------------------------------------------------------- patches

class PatchError(ValueError):
    pass


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# patchMergeKey of the list fields kestra-ops (and kubectl) touch; "ports" depends on context.
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
    "imagePullSecrets": "name", "conditions": "type", "ownerReferences": "uid",
    "hostAliases": "ip", "topologySpreadConstraints": "topologyKey", "ports": None,
}
PRIMITIVE_MERGE = {"finalizers"}
_DIRECTIVES = ("$patch", "$retainKeys")


def strategic_merge_patch(target, patch):
    """Strategic merge patch: RFC 7386 plus keyed list merging and the $patch directives."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return _strip({k: v for k, v in patch.items() if k != "$patch"})
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key in _DIRECTIVES or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            result[name] = [x for x in result.get(name) or [] if x not in (value or [])]
            continue
        cur = result.get(key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and key in MERGE_KEYS and isinstance(cur, list):
            result[key] = _merge_list(cur, value, key)
        elif isinstance(value, list) and key in PRIMITIVE_MERGE and isinstance(cur, list):
            result[key] = cur + [v for v in value if v not in cur]
        elif isinstance(value, dict):
            merged = strategic_merge_patch(cur if isinstance(cur, dict) else {}, value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = _strip(copy.deepcopy(value))
    if isinstance(patch.get("$retainKeys"), list):
        result = {k: v for k, v in result.items() if k in patch["$retainKeys"]}
    return result


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items()
                if k not in _DIRECTIVES and not k.startswith("$setElementOrder/")}
    if isinstance(value, list):
        return [_strip(v) for v in value if not (isinstance(v, dict) and v.get("$patch"))]
    return value


def _merge_list(cur: list, patch: list, field: str) -> list:
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return _strip([p for p in patch if not (isinstance(p, dict) and "$patch" in p)])
    if not all(isinstance(p, dict) for p in patch + cur):
        return _strip(copy.deepcopy(patch))
    key = MERGE_KEYS[field]
    if key is None:  # ports: containerPort in containers, port in services
        key = "containerPort" if any("containerPort" in p for p in patch + cur) else "port"
    result = copy.deepcopy(cur)
    for item in patch:
        idx = next((i for i, c in enumerate(result) if c.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                result.pop(idx)
        elif idx is None:
            result.append(strategic_merge_patch({}, item))
        else:
            result[idx] = strategic_merge_patch(result[idx], item)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc, parts: list[str], path: str):
    cur = doc
    for p in parts:
        try:
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        except (KeyError, IndexError, ValueError, TypeError):
            raise PatchError(f"doc is missing path: \"{path}\": missing value") from None
    return cur


def _put(doc, path: str, value, replace: bool):
    parts = _pointer(path)
    if not parts:
        return value
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, list):
        if last == "-" and not replace:
            parent.append(value)
            return doc
        try:
            idx = int(last)
        except ValueError:
            raise PatchError(f"invalid array index {last!r} in \"{path}\"") from None
        if idx < 0 or idx > len(parent) or (replace and idx == len(parent)):
            raise PatchError(f"unable to access invalid index: {idx}")
        if replace:
            parent[idx] = value
        else:
            parent.insert(idx, value)
    elif isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(f"replace operation does not apply: doc is missing key: {path}: "
                             f"missing value")
        parent[last] = value
    else:
        raise PatchError(f"doc is missing path: \"{path}\": missing value")
    return doc


def _remove(doc, path: str):
    parts = _pointer(path)
    parent = _walk(doc, parts[:-1], path)
    value = _walk(parent, parts[-1:], path)
    if isinstance(parent, list):
        parent.pop(int(parts[-1]))
    else:
        del parent[parts[-1]]
    return value


def json_patch(doc, ops):
    """RFC 6902 JSON patch: add, remove, replace, move, copy, test."""
    if not isinstance(ops, list):
        raise PatchError("json patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid operation {op!r}")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"missing value for operation {kind} at {path}")
        if kind == "add":
            doc = _put(doc, path, copy.deepcopy(op["value"]), replace=False)
        elif kind == "replace":
            doc = _put(doc, path, copy.deepcopy(op["value"]), replace=True)
        elif kind == "remove":
            _remove(doc, path)
        elif kind in ("move", "copy"):
            src = op.get("from")
            value = _remove(doc, src) if kind == "move" else copy.deepcopy(
                _walk(doc, _pointer(src), src))
            doc = _put(doc, path, value, replace=False)
        elif kind == "test":
            if _walk(doc, _pointer(path), path) != op["value"]:
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {kind}")
    return doc
