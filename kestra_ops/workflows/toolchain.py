"""doctor --local: the local toolchain kestra-ops drives, each an item with its fix.

- ``helm``: found and 3.8+ (Helm 3 releases before 3.8 lack the OCI and server-side features
  the chart and deploy use; 4.x is fine).
- ``pg_dump`` / ``pg_restore``: found, and of the database server's major version or newer
  when the database is known (KESTRA_OPS_DATABASE_URL); missing is a warning (only backups need
  them).
- ``kubeconfig``: the file and the context the environment would use load (the current context
  when none is named), and which they are.

Nothing here talks to a cluster or changes anything.
"""

from __future__ import annotations

import os
import time

from kestra_ops import results
from kestra_ops.errors import KestraOpsError
from kestra_ops.results import FAIL, PASS, WARN, Item

MIN_HELM = (3, 8, 0)


def _timed(fn, *args) -> Item:
    started = time.perf_counter()
    item = fn(*args)
    item.seconds = time.perf_counter() - started
    return item


def helm_item(helm: str | None) -> Item:
    from kestra_ops.adapters.helm_cli import find_helm, helm_version

    try:  # as every command finds it: --helm / KESTRA_OPS_HELM, PATH, beside the interpreter
        where = find_helm(helm)
    except KestraOpsError as err:
        return Item("helm", FAIL, str(err),
                    fix="install helm 3.8+ or 4.x (https://helm.sh/docs/intro/install/), or run "
                        "scripts/setup in a checkout (it installs a pinned one)")
    try:
        version = helm_version(where)
    except KestraOpsError as err:
        return Item("helm", FAIL, f"{where}: {err}", fix="install helm 3.8+ or 4.x")
    shown = ".".join(map(str, version))
    if version < MIN_HELM:
        return Item("helm", FAIL, f"helm {shown} at {where} is older than 3.8",
                    fix="install helm 3.8+ or 4.x")
    return Item("helm", PASS, f"helm {shown} at {where}")


def pg_items(server_major: int | None, server_error: str) -> list[Item]:
    from kestra_ops.adapters.postgres import installed

    items = []
    for name in ("pg_dump", "pg_restore"):
        found = installed(name)
        if not found:
            items.append(Item(name, WARN, f"{name} not found (only backup run, restore and "
                                          "drill need it)",
                              fix="install the PostgreSQL client (Debian: apt-get install "
                                  "postgresql-client)"))
            continue
        path, (major, minor) = max(found.items(), key=lambda kv: kv[1])
        have = f"{name} {major}.{minor} at {path}"
        if server_major is None:
            why = server_error or "no KESTRA_OPS_DATABASE_URL"
            items.append(Item(name, PASS, f"{have} (server version not checked: {why})"))
        elif major < server_major:
            items.append(Item(name, FAIL, f"{have} is older than the server (PostgreSQL "
                                          f"{server_major})",
                              fix=f"install postgresql-client-{server_major} or newer"))
        else:
            items.append(Item(name, PASS, f"{have} (server: PostgreSQL {server_major})"))
    return items


def kubeconfig_item(context: str | None, kubeconfig: str | None) -> Item:
    from kestra_ops.adapters.kube import current_context, load_configuration

    try:
        _, origin = load_configuration(context=context, kubeconfig=kubeconfig)
    except KestraOpsError as err:
        return Item("kubeconfig", FAIL, str(err), fix=err.hint or "")
    if origin == "in-cluster":
        return Item("kubeconfig", PASS, "in-cluster configuration (a pod's service account)")
    path = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    name = context or current_context(kubeconfig) or "(current)"
    return Item("kubeconfig", PASS, f"{path}, context {name}")


def _server_major(database_url: str | None) -> tuple[int | None, str]:
    """The database server's major version, or None and why not."""
    from kestra_ops.credentials import DATABASE_URL_VAR, database_url as resolve

    if not (database_url or os.environ.get(DATABASE_URL_VAR)):
        return None, ""
    try:
        from kestra_ops.adapters.postgres import server_major

        return server_major(resolve(database_url)), ""
    except KestraOpsError as err:
        return None, f"cannot reach the database: {err}"


def run_local(env=None, *, context: str | None = None, kubeconfig: str | None = None,
              helm: str | None = None, database_url: str | None = None) -> results.Report:
    """The local toolchain as a report: exit 0 when nothing fails (warnings allowed), else 1.
    The kubeconfig and context are ``env``'s when given, else ``context`` and ``kubeconfig``
    (None: $KUBECONFIG or ~/.kube/config, and its current context)."""
    started = time.perf_counter()
    name = env.name if env is not None else None
    report = results.Report("doctor --local", name, title="local toolchain",
                            items_key="tools")
    report.items.append(_timed(helm_item, helm))
    server, why = _server_major(database_url)
    report.items.extend(pg_items(server, why))
    if env is not None:
        context, kubeconfig = env.context, getattr(env, "kubeconfig", None)
    report.items.append(_timed(kubeconfig_item, context, kubeconfig))
    failed = [i.id for i in report.items if i.status == FAIL]
    warned = [i.id for i in report.items if i.status == WARN]
    report.status = FAIL if failed else WARN if warned else PASS
    report.exit_code = 1 if failed else 0
    took = time.perf_counter() - started
    report.message = (f"doctor --local: FAILED: {', '.join(failed)} ({took:.1f}s)" if failed
                      else "doctor --local: ok" + (f", warnings: {', '.join(warned)}"
                                                      if warned else "") + f" ({took:.1f}s)")
    return report
