"""Flows as code, offline: read a directory of flow files (one flow per file) and check them.

Each file is parsed by :func:`kestra_ops.workflows.flows.yamldoc.parse_flow` (file:line:col for
every node and every YAML error). A target is a directory (``*.yml``/``*.yaml`` below
it, hidden folders skipped), one flow file, or a ZIP as ``flows export`` writes it.

Checks: the document is a mapping with ``id``, ``namespace`` and a non-empty ``tasks`` list; the
id is a Kestra flow id; the namespace follows our naming (``lowercase.with-hyphens``: dot-separated
segments of ``[a-z0-9][a-z0-9-]*``); no two files define the same flow; task ids are unique in a
flow and every task has a ``type``; and no ``type`` anywhere in the flow (tasks at any depth,
triggers, errors, finally, afterExecution, task runners, pluginDefaults) matches a glob of the
plugin blacklist (``kestra.plugins.blacklist`` of the environment's merged values, else
:data:`DEFAULT_BLACKLIST`). With a target version, the flow syntax the upgrade removes, renames
or changes, as the version catalogue lists it (:mod:`kestra_ops.upgrades.flow_rules`).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from kestra_ops.errors import InvalidInput
from kestra_ops.values.findings import Finding, Report, json_path
from kestra_ops.workflows.flows.files import FLOW_SUFFIXES, flow_entries  # noqa: F401
from kestra_ops.workflows.flows.yamldoc import LocalFlow, Path_, parse_flow
from kestra_ops.yamlio import Location, YamlLoadError, decode_utf8, display_name

DEFAULT_BLACKLIST = ("io.kestra.plugin.docker.*",)
FLOW_ID_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,99}$")  # Kestra's Flow.id constraint
NAMESPACE_RE = re.compile(r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)*$")  # our naming rule
TASK_LISTS = ("tasks", "errors", "finally", "afterExecution", "then", "else", "default")


@dataclass(frozen=True)
class Blacklist:
    patterns: tuple[str, ...]
    origin: str  # where the list comes from (a values file:line, or the default)

    def match(self, plugin_type: str, *, prefix: bool = False) -> str | None:
        """The first glob ``plugin_type`` matches. ``prefix``: the type is a package prefix
        (pluginDefaults may name ``io.kestra.plugin.docker`` for every type below it)."""
        for pattern in self.patterns:
            if fnmatch.fnmatchcase(plugin_type, pattern):
                return pattern
            if prefix and fnmatch.fnmatchcase(plugin_type + ".AnyType", pattern):
                return pattern
        return None


# ---- reading ----------------------------------------------------------------------------------

def read_flows(target: Path) -> tuple[list[LocalFlow], list[Finding]]:
    """Every flow of ``target`` and the findings of files that could not be read as YAML (or
    were not read at all: a symlink leaving the directory, a FIFO; see :mod:`files`)."""
    flows, findings = [], []
    for entry in flow_entries(Path(target)):
        if entry.raw is None:
            findings.append(Finding(entry.rule or "io/unreadable", "error", entry.problem or "",
                                    "$", Location(entry.name)))
            continue
        try:
            flows.append(parse_flow(decode_utf8(entry.raw, entry.name), entry.name))
        except YamlLoadError as err:
            findings.append(Finding(err.rule, "error", err.detail, "$", err.location, err.hint))
    return flows, findings


# ---- checks -----------------------------------------------------------------------------------

def _finding(flow: LocalFlow, rule: str, message: str, path: Path_, hint: str | None = None,
             severity: str = "error", *, value: bool = True) -> Finding:
    where = flow.value_location(path) if value else None
    return Finding(rule, severity, message, json_path(path), where or flow.locate(path), hint)


def plugin_types(data: Any, path: Path_ = ()) -> Iterator[tuple[Path_, str]]:
    """(path, type) of every ``type: <string>`` anywhere in the flow."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "type" and isinstance(value, str):
                yield path + (key,), value
            else:
                yield from plugin_types(value, path + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from plugin_types(value, path + (i,))


def tasks(data: Any, path: Path_ = ()) -> Iterator[tuple[Path_, dict]]:
    """(path, task) of every task at any depth: task lists of flowable tasks, Switch cases and
    Dag entries (``{task: {...}, dependsOn: [...]}``)."""
    if not isinstance(data, dict):
        return
    lists = [(path + (k,), data[k]) for k in TASK_LISTS if isinstance(data.get(k), list)]
    if isinstance(data.get("cases"), dict):
        lists += [(path + ("cases", c), v) for c, v in data["cases"].items() if isinstance(v, list)]
    for list_path, items in lists:
        for i, item in enumerate(items):
            here = list_path + (i,)
            if isinstance(item, dict) and "type" not in item and isinstance(item.get("task"), dict):
                item, here = item["task"], here + ("task",)
            if isinstance(item, dict):
                yield here, item
                yield from tasks(item, here)


def check_flow(flow: LocalFlow, blacklist: Blacklist) -> list[Finding]:
    data = flow.data
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        return [_finding(flow, "flows/not-a-flow", f"the document is {kind}, not a flow", (),
                         "a flow file is a mapping with id, namespace and tasks")]
    out = []
    for key in ("id", "namespace", "tasks"):
        if data.get(key) in (None, "", []):
            out.append(_finding(flow, "flows/missing-key", f"'{key}' is missing or empty",
                                (key,) if key in data else (),
                                "every flow needs id, namespace and at least one task"))
    fid, ns = data.get("id"), data.get("namespace")
    if fid not in (None, "") and not (isinstance(fid, str) and FLOW_ID_RE.match(fid)):
        out.append(_finding(flow, "flows/id", f"flow id {fid!r} is not a valid Kestra flow id",
                            ("id",), "letters, digits, '.', '_' and '-', up to 100 characters, "
                            "starting with a letter or digit"))
    if ns not in (None, "") and not (isinstance(ns, str) and NAMESPACE_RE.match(ns)):
        out.append(_finding(flow, "flows/namespace", f"namespace {ns!r} is not "
                            "lowercase.with-hyphens", ("namespace",),
                            "dot-separated segments of lower-case letters, digits and hyphens, "
                            "e.g. company.data-team"))
    if "tasks" in data and not isinstance(data["tasks"], list):
        out.append(_finding(flow, "flows/missing-key", "'tasks' is not a list", ("tasks",)))
    seen: dict[str, Path_] = {}
    for path, task in tasks(data):
        tid = task.get("id")
        if "type" not in task:
            out.append(_finding(flow, "flows/task-type", f"task {tid or json_path(path)!r} has "
                                "no type", path, "every task names its plugin type",
                                value=False))
        if isinstance(tid, str):
            if tid in seen:
                out.append(_finding(flow, "flows/duplicate-task-id", f"task id {tid!r} is used "
                                    f"twice (first at {flow.locate(seen[tid])})", path + ("id",),
                                    "task ids are unique within a flow"))
            else:
                seen[tid] = path
    for path, plugin_type in plugin_types(data):
        pattern = blacklist.match(plugin_type, prefix=path[0] in ("pluginDefaults",
                                                                  "taskDefaults"))
        if pattern:
            out.append(_finding(flow, "flows/blacklisted-type", f"{plugin_type} is blacklisted "
                                f"(matches {pattern!r}; {blacklist.origin})", path,
                                "this plugin is disabled on the platform: use another plugin "
                                "(e.g. a script task with the process task runner)"))
    return out


def check_flows(flows: list[LocalFlow], blacklist: Blacklist) -> list[Finding]:
    """Per-flow checks, then duplicates across files."""
    findings = [f for flow in flows for f in check_flow(flow, blacklist)]
    first: dict[tuple[str, str], LocalFlow] = {}
    for flow in flows:
        if flow.namespace is None or flow.id is None:
            continue
        if flow.key in first:
            findings.append(_finding(flow, "flows/duplicate-flow", f"flow {flow.name} is also "
                                     f"defined in {first[flow.key].file}", ("id",),
                                     "one file per flow: remove or rename one of them"))
        else:
            first[flow.key] = flow
    return findings


def blacklist_for(env=None) -> tuple[Blacklist, list[Finding]]:
    """The blacklist flows are checked against, and the findings about the list itself.

    Without ``env``: :data:`DEFAULT_BLACKLIST`. With one, the valid globs of its merged
    ``kestra.plugins.blacklist``; outside dev the built-in minimum (:data:`DEFAULT_BLACKLIST`)
    is always added, whatever the list says, and a list that is missing, empty, not a list or
    holds an invalid glob is an error (the values rules' findings, reused) that stops validate
    and apply; in dev those findings are warnings and a list without one valid glob falls back
    to the default. Fails closed: never an empty blacklist."""
    if env is None:
        return Blacklist(DEFAULT_BLACKLIST, "default blacklist"), []
    from kestra_ops.values.merge import load_layers
    from kestra_ops.values.rules import Context
    from kestra_ops.values.rules_platform import plugin_blacklist, valid_blacklist_entries

    merged = load_layers(env.values_paths)
    ctx = Context(merged.plain, env.name)
    path, entries = ctx.get_any(("kestra", "plugins", "blacklist"))
    severity = "error" if ctx.strict else "warning"
    findings = [Finding(hit.rule, hit.severity if ctx.strict else "warning", hit.message,
                        json_path(hit.path), merged.locate(hit.path), hit.hint)
                for hit in plugin_blacklist(ctx)]
    findings += [Finding("kestra/plugin-blacklist-glob", severity, message, json_path(where),
                         merged.locate(where), "a list of plugin-type globs, e.g. "
                         '["io.kestra.plugin.docker.*"]')
                 for where, message in _malformed(path, entries)]
    patterns = valid_blacklist_entries(entries)
    if patterns:
        where = merged.locate(path)
        origin = f"kestra.plugins.blacklist, {where.file}:{where.line}"
    else:
        origin = f"default blacklist: no valid entry in the values of {env.name}"
    if ctx.strict:
        extra = tuple(p for p in DEFAULT_BLACKLIST if p not in patterns)
        if patterns and extra:
            origin += ", and the built-in minimum"
        patterns += extra
    return Blacklist(patterns or DEFAULT_BLACKLIST, origin), findings


def _malformed(path: tuple, entries: Any) -> Iterator[tuple[tuple, str]]:
    """What the chart's schema says of the list (flows do not run the schema)."""
    from kestra_ops.values.rules import MISSING

    if isinstance(entries, list):
        for i, entry in enumerate(entries):
            if not isinstance(entry, str):
                yield path + (i,), f"blacklist entry {i} is not a string"
    elif entries is not None and entries is not MISSING:
        yield path, "kestra.plugins.blacklist is not a list"


@dataclass
class LocalResult:
    flows: list[LocalFlow]
    report: Report
    blacklist: Blacklist


def validate_local(target: Path, env=None, target_version: str | None = None,
                   from_version: str | None = None) -> LocalResult:
    """Read ``target`` and run every offline check. ``report.unreadable`` when a file is not
    YAML; the report's errors when a flow is wrong. With ``target_version``, also the flow
    syntax the releases in (``from_version``, ``target_version``] remove, rename or change
    (:mod:`kestra_ops.upgrades.flow_rules`); a version the catalogue does not know is
    InvalidInput, raised before any file is read."""
    upgrade = upgrade_range(target_version, from_version)
    blacklist, notes = blacklist_for(env)
    flows, findings = read_flows(Path(target))
    report = Report(target=display_name(Path(target)), env=getattr(env, "name", None))
    report.findings = notes + findings + check_flows(flows, blacklist)
    report.unreadable = bool(findings)
    report.layers = [f"{len(flows)} flow(s)", blacklist.origin]
    if upgrade is not None:
        from kestra_ops.upgrades import flow_rules

        cat, start, to = upgrade
        report.findings += flow_rules.check_flows(flows, cat, to, start)
        report.layers.append(f"upgrade to Kestra {to}" + (f" from {start}" if start else "")
                             + " (version catalogue)")
    return LocalResult(flows, report, blacklist)


def upgrade_range(target_version: str | None, from_version: str | None):
    """(catalogue, start or None, target) of ``--target-version``/``--from-version``, or None
    without a target; InvalidInput for a version the catalogue does not support."""
    if target_version is None:
        if from_version is not None:
            raise InvalidInput("--from-version needs --target-version")
        return None
    from kestra_ops.upgrades.catalogue import load
    from kestra_ops.upgrades.version import parse

    cat = load()
    to = cat.target(target_version)
    start = parse(from_version, "--from-version") if from_version is not None else None
    if start is not None and start >= to:
        raise InvalidInput(f"--from-version {start} is not older than the target {to}: no "
                           "upgrade to check")
    return cat, start, to
