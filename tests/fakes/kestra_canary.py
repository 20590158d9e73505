"""The tasks the fake Kestra really runs: reads of the KV store and of namespace files, so that a
"canary" flow proves a restored Kestra has its data. Every other task type keeps the fake's usual
behaviour (fail / hang markers, see kestra_flows.FlowRules.outcome).

Interpreted, as top-level tasks of a flow (nested ones are not):

- ``io.kestra.plugin.core.kv.Get`` (https://kestra.io/plugins/io.kestra.plugin.core.kv.Get;
  core/src/main/java/io/kestra/plugin/core/kv/Get.java): ``key``, ``namespace`` (default: the
  flow's), ``errorOnMissing`` (default false). Output ``value``: the value, or null when the key
  is missing; with ``errorOnMissing: true`` a missing key FAILS the task. A key whose metadata row
  exists but whose object is gone from the bucket is missing (InternalKVStore.getRawValue turns
  FileNotFoundException into an empty Optional).
- ``io.kestra.plugin.core.namespace.DownloadFiles``
  (https://kestra.io/plugins/core/tasks/namespace/io.kestra.plugin.core.namespace.DownloadFiles;
  core/src/main/java/io/kestra/plugin/core/namespace/DownloadFiles.java): ``namespace``,
  ``files`` (a path or glob, or a list of them), ``destination`` (default ""). Every matching
  file (by its metadata row) is copied into the task run's storage
  (``<tenant>/<ns>/<flow>/executions/<id>/tasks/<task>/<task run id>/<destination><path>``), so
  the execution has files in the bucket. Output ``files``: ``{"/path": "kestra:///...uri"}``.
  A file whose metadata exists but whose object is gone FAILS the task (FileNotFoundException);
  a pattern that matches nothing succeeds with an empty map, as the real task does: a canary must
  check that ``files`` holds what it expects.

- ``io.kestra.plugin.core.execution.Assert`` (https://kestra.io/plugins/io.kestra.plugin.core.execution.Assert):
  ``conditions`` (one or a list); the task FAILS unless every condition is true. The fake only
  understands ``{{ outputs.<task>.<output> | length <op> <n> }}`` (op one of > >= < <= == !=), e.g.
  ``{{ outputs.read_file.files | length > 0 }}``; any other condition counts as false.

Globs are a model of PathMatcherPredicate: ``**`` any characters, ``*`` / ``?`` within a path
segment, matched against the path with its leading ``/``. Only ``{{ flow.namespace }}`` /
``{{ flow.id }}`` are rendered in properties. Tasks run when the execution is created; the
execution then goes through its states as any other one of the fake.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .kestra_store import ObjectMissing

if TYPE_CHECKING:
    from .kestra_server import FakeKestra

KV_GET = "io.kestra.plugin.core.kv.Get"
DOWNLOAD_FILES = "io.kestra.plugin.core.namespace.DownloadFiles"
ASSERT = "io.kestra.plugin.core.execution.Assert"
INTERPRETED = (KV_GET, DOWNLOAD_FILES, ASSERT)
LENGTH_CONDITION = re.compile(r"\{\{\s*outputs\.([\w-]+)\.(\w+)\s*\|\s*length\s*(>=|<=|==|!=|>|<)\s*(\d+)\s*}}")
_COMPARE = {">": int.__gt__, ">=": int.__ge__, "<": int.__lt__, "<=": int.__le__, "==": int.__eq__,
            "!=": int.__ne__}


def _condition(text: Any, outputs: dict[str, Any]) -> bool:
    """One Assert condition; only ``{{ outputs.<task>.<output> | length <op> <n> }}`` is understood,
    anything else is false (the fake cannot render it, so it does not let it pass)."""
    m = LENGTH_CONDITION.fullmatch(str(text).strip())
    if m is None:
        return False
    value = (outputs.get(m.group(1)) or {}).get(m.group(2))
    return value is not None and _COMPARE[m.group(3)](len(value), int(m.group(4)))


def task_run_id(execution_id: str, index: int) -> str:
    """The id the fake gives the task run of the ``index``-th task (see Execution._task_runs)."""
    return f"{execution_id[:16]}{index:06d}"


def _render(value: Any, flow: dict[str, Any]) -> Any:
    if isinstance(value, str):
        value = re.sub(r"\{\{\s*flow\.namespace\s*}}", flow["namespace"], value)
        return re.sub(r"\{\{\s*flow\.id\s*}}", flow["id"], value)
    if isinstance(value, list):
        return [_render(v, flow) for v in value]
    return value


def _glob(pattern: str) -> re.Pattern:
    pattern = pattern[5:] if pattern.startswith("glob:") else pattern
    if not pattern.startswith(("/", "**")):
        pattern = "/" + pattern
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def run(fake: "FakeKestra", flow: dict[str, Any], execution_id: str) -> tuple[str, int | None, dict[str, Any]]:
    """(outcome SUCCESS|FAILED, index of the failed task, outputs by task id); caller holds the lock."""
    data = fake.data
    outputs: dict[str, Any] = {}
    for i, task in enumerate(flow.get("tasks") or []):
        kind, task_id = task.get("type"), str(task.get("id"))
        if kind == KV_GET:
            namespace = _render(task.get("namespace") or flow["namespace"], flow)
            found = data.kv_get(namespace, str(_render(task.get("key"), flow)))
            if found is None and str(task.get("errorOnMissing", False)).lower() == "true":
                return "FAILED", i, outputs
            outputs[task_id] = {"value": found[1] if found else None}
        elif kind == DOWNLOAD_FILES:
            namespace = _render(task.get("namespace"), flow)
            patterns = _render(task.get("files"), flow)
            patterns = [patterns] if isinstance(patterns, str) else list(patterns or [])
            regexes = [_glob(str(p)) for p in patterns]
            destination = str(_render(task.get("destination") or "", flow))
            files = {}
            for row in data.file_rows(str(namespace)):
                path = row["path"]
                if path.endswith("/") or not any(rx.fullmatch(path) for rx in regexes):
                    continue
                try:
                    content = data.file_get(str(namespace), path)
                except ObjectMissing:
                    return "FAILED", i, outputs
                if content is None:
                    return "FAILED", i, outputs
                key = data.task_object(flow["namespace"], flow["id"], execution_id, task_id,
                                       task_run_id(execution_id, i), destination.rstrip("/") + path)
                data.objects.put(key, content)
                files[path] = "kestra:///" + key[len(data.tenant) + 1:]
            outputs[task_id] = {"files": files}
        elif kind == ASSERT:
            conditions = task.get("conditions")
            conditions = [conditions] if isinstance(conditions, str) else list(conditions or [])
            if not all(_condition(c, outputs) for c in conditions):
                return "FAILED", i, outputs
    return "SUCCESS", None, outputs
