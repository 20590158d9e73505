"""What proves a restored Kestra runs on its restored data: a canary flow and counts.

The canary is a throw-away flow (created, executed to a final state, deleted: the post-deploy
check's machinery, :func:`kestra_ops.checks.kestra.run_e2e`) that reads one KV value and one
namespace file that the backup set references, so it passes only when the database (the
metadata) and internal storage (the objects) came back together. Its tasks, from Kestra's
plugin documentation:

* ``io.kestra.plugin.core.kv.Get`` with ``key``, ``namespace`` and ``errorOnMissing: true``
  (https://kestra.io/plugins/io.kestra.plugin.core.kv.Get: fails when the key has no value);
* ``io.kestra.plugin.core.namespace.DownloadFiles`` with ``namespace`` and ``files``
  (https://kestra.io/plugins/core/tasks/namespace/io.kestra.plugin.core.namespace.DownloadFiles:
  its output ``files`` maps each downloaded path to its URI);
* ``io.kestra.plugin.core.execution.Assert`` on ``outputs.<download>.files`` not being empty
  (https://kestra.io/plugins/io.kestra.plugin.core.execution.Assert: a falsy condition fails
  the execution), since a file pattern that matches nothing is not an error by itself.

Counts (flows, executions, KV entries, namespace files) are read through Kestra's API, so they
say what the restored server serves, not what the database holds.
"""

from __future__ import annotations

import json

from kestra_ops.results import FAIL, PASS, SKIP, WARN, Item

CANARY_TIMEOUT = 120.0


KV_TABLE, FILES_TABLE = "kv_metadata", "namespace_file_metadata"  # see kestra_storage.py


def referenced(refs: dict | None, table: str) -> list[tuple[str, str]]:
    """(namespace, name) of the current rows of ``table`` in the set's ``storage-refs.json``
    (KV: the key; namespace files: the path, folders left out)."""
    return sorted((r["namespace"], r["name"]) for r in (refs or {}).get("refs") or []
                  if r.get("table") == table and r.get("namespace") and r.get("name")
                  and not (table == FILES_TABLE and str(r["name"]).endswith("/")))


def pick(refs: dict | None) -> tuple[tuple[str, str] | None, tuple[str, str] | None]:
    """One (namespace, key) KV entry and one (namespace, path) namespace file from the set's
    storage references; None for a kind the set has none of."""
    kv, files = referenced(refs, KV_TABLE), referenced(refs, FILES_TABLE)
    return (kv[0] if kv else None), (files[0] if files else None)


def canary_source(flow_id: str, namespace: str, kv: tuple[str, str] | None,
                  file: tuple[str, str] | None) -> str:
    """The canary flow's YAML (strings JSON-quoted: a key or path never breaks the YAML)."""
    q = json.dumps
    lines = [f"id: {flow_id}", f"namespace: {namespace}",
             "description: kestra-ops restore canary (deleted after the run)",
             "labels:", "  kestra-ops.canary: \"true\"", "tasks:"]
    if kv is not None:
        lines += ["  - id: read_kv", "    type: io.kestra.plugin.core.kv.Get",
                  f"    namespace: {q(kv[0])}", f"    key: {q(kv[1])}",
                  "    errorOnMissing: true"]
    if file is not None:
        lines += ["  - id: read_file", "    type: io.kestra.plugin.core.namespace.DownloadFiles",
                  f"    namespace: {q(file[0])}", f"    files: [{q(file[1])}]",
                  "  - id: file_found", "    type: io.kestra.plugin.core.execution.Assert",
                  "    conditions:", "      - \"{{ outputs.read_file.files | length > 0 }}\"",
                  f"    errorMessage: {q('namespace file not found: ' + file[1])}"]
    return "\n".join(lines) + "\n"


def run_canary(client, refs: dict | None, *, timeout: float = CANARY_TIMEOUT) -> Item:
    """The ``canary`` item: SKIP when the set references no KV value and no namespace file."""
    from kestra_ops.checks.kestra import run_e2e

    kv, file = pick(refs)
    if kv is None and file is None:
        return Item("canary", SKIP, "the set references no KV value and no namespace file")
    namespace = (kv or file)[0]
    read = [f"KV {kv[0]}/{kv[1]}"] if kv else []
    read += [f"namespace file {file[0]}:{file[1]}"] if file else []
    run = run_e2e(client, timeout=timeout, namespace=namespace, prefix="canary",
                  source=lambda flow_id, ns: canary_source(flow_id, ns, kv, file))
    data = [{"flow": f"{namespace}.{run.flow_id}", "execution": run.execution_id,
             "state": run.state, "reads": read, "deleted": run.deleted}]
    if run.error or run.interrupted:
        return Item("canary", FAIL, run.error or "interrupted", list(run.steps), data=data)
    if run.state != "SUCCESS":
        return Item("canary", FAIL, f"canary execution {run.execution_id} ended {run.state}: "
                    f"{' and '.join(read)} not readable from the restored Kestra",
                    list(run.steps), data=data)
    status = PASS if run.deleted else WARN
    return Item("canary", status, f"canary read {' and '.join(read)} (execution "
                f"{run.execution_id} SUCCESS)" + ("" if run.deleted else
                                                  f"; flow {run.flow_id} left behind"),
                list(run.steps), data=data)


def counts(client, refs: dict | None = None) -> dict[str, int]:
    """Flows, executions, KV entries and namespace files that ``client``'s Kestra serves. Kestra
    OSS lists only the namespaces that hold flows (``flows/distinct-namespaces``), so the
    namespaces the set's references name are looked at too."""
    flows = list(client.search_flows())
    known = {r.get("namespace") for r in (refs or {}).get("refs") or []}
    namespaces = sorted({f.get("namespace") for f in flows if f.get("namespace")} |
                        set(client.namespaces()) | {n for n in known if n})
    kv = sum(len(client.kv_keys(ns)) for ns in namespaces)
    files = sum(len(client.namespace_files(ns)) for ns in namespaces)
    return {"flows": len(flows), "executions": client.count_executions(), "kv": kv,
            "namespace_files": files}


def compare(expected: dict[str, int] | None, got: dict[str, int]) -> Item:
    """The ``counts`` item: what the restored Kestra serves against the set's own counts (taken
    at the backup's consistent point; see the manifest's ``counts``)."""
    if not expected:
        return Item("counts", WARN, "the set records no counts (an older set): restored "
                    + ", ".join(f"{k} {v}" for k, v in got.items()), data=[{"restored": got}])
    # a restored Kestra runs: its schedules, the canary and the checklist's flow add executions
    # (never fewer than the set's); the other counts must be the set's exactly
    diff = [f"{k}: set {expected.get(k)}, restored {got.get(k)}" for k in sorted(got)
            if k in expected and (got.get(k) < expected[k] if k == "executions"
                                  else expected.get(k) != got.get(k))]
    data = [{"set": expected, "restored": got}]
    if diff:
        return Item("counts", FAIL, "; ".join(diff), data=data)
    return Item("counts", PASS, ", ".join(f"{k} {got[k]}" for k in sorted(got)
                                          if k in expected) + " (as in the set)", data=data)
