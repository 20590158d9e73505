"""check: the runbook's post-deploy checklist, each item pass / warn / fail with its time and why.

The items (ids for ``--only``), all independent, run concurrently with their own timeout:
``pods``, ``readiness``, ``events``, ``minio``, ``kestra-api``, ``login``, ``e2e-flow``,
``configmap`` (see :mod:`kestra_ops.checks`). With ``wait``, failing items run again until all
pass or the time is up. Connections are made on first use, by the first item that needs one, so
``--only minio`` never loads the Kubernetes client.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from kestra_ops.checks import CHECK_IDS, FAIL, CheckResult
from kestra_ops.checks.runner import Spec, run_checks
from kestra_ops.errors import InvalidInput
from kestra_ops.settings import Environment


@dataclass
class CheckReport:
    env: str
    namespace: str
    results: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0
    kestra_url: str | None = None  # the URL the Kestra items used (never with credentials)
    kestra_url_source: str | None = None  # how it was chosen (flag, variable, config, proxy)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(r.status == FAIL for r in self.results)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.results) for s in ("pass", "warn", "fail")}

    def to_dict(self) -> dict:
        return {"env": self.env, "namespace": self.namespace, "kestra_url": self.kestra_url,
                "kestra_url_source": self.kestra_url_source,
                "ok": self.ok, "exit_code": self.exit_code, "seconds": round(self.seconds, 3),
                "counts": self.counts(), "warnings": list(self.warnings),
                "checks": [r.to_dict() for r in self.results]}


def select(only: str | list[str] | None) -> list[str]:
    """The ids ``--only`` names (comma-separated, in checklist order); all without it."""
    if not only:
        return list(CHECK_IDS)
    words = only.split(",") if isinstance(only, str) else list(only)
    wanted = [w.strip() for w in words if w.strip()]
    unknown = [w for w in wanted if w not in CHECK_IDS]
    if unknown or not wanted:
        raise InvalidInput(f"--only: unknown check(s) {', '.join(unknown) or '(none given)'} "
                           f"(known: {', '.join(CHECK_IDS)})")
    return [c for c in CHECK_IDS if c in wanted]


class Lazy:
    """A value built on first use, once, whichever thread asks first; closed at the end."""

    def __init__(self, build: Callable[[], object], close: Callable[[object], None] | None = None):
        self._build, self._close = build, close
        self._lock = threading.Lock()
        self._value, self._built = None, False

    def get(self):
        with self._lock:
            if not self._built:
                self._value, self._built = self._build(), True
            return self._value

    def close(self) -> None:
        with self._lock:
            if self._built and self._close is not None and self._value is not None:
                self._close(self._value)


def kestra_client(env: Environment, kube: Lazy | None, *, kestra_url: str | None,
                  insecure: bool, timeout: float, warnings: set[str] | None = None):
    """A client for this environment with the item's time budget (one per item: sessions are
    not shared between threads). The Kubernetes connection is used only when needed: for the
    service proxy (no URL) or the basic-auth Secret (no password variable)."""
    import os

    from kestra_ops.adapters.kestra_api import PASSWORD_VAR, URL_VAR
    from kestra_ops.wiring import client_for_env

    url = kestra_url or os.environ.get(URL_VAR) or env.kestra_url
    need_kube = not (url and os.environ.get(PASSWORD_VAR))
    client = client_for_env(env, kube=kube.get() if need_kube and kube is not None else None,
                            kestra_url=kestra_url, insecure=insecure,
                            timeout=max(min(timeout, 30.0), 0.5), retries=1)
    if warnings is not None:
        warnings.update(client.warnings)
    return client


def build_specs(env: Environment, ids: list[str], *, kube: Lazy, kestra_url: str | None,
                insecure: bool, warnings: set[str] | None = None,
                used: dict | None = None) -> list[Spec]:
    """The items' functions. ``used`` receives the ``url`` and ``route`` of the first Kestra
    client built (every item builds the same)."""
    from kestra_ops.checks import configmap, events, kestra, pods, storage

    ns = env.namespace

    def pods_check(t, cancel):
        found = pods.fetch_pods(kube.get(), ns, timeout=t)
        logs = pods.fetch_logs(kube.get(), ns, pods.wanted_logs(found), timeout=t)
        return pods.check_pods(found, logs, ns)

    def readiness_check(t, cancel):
        return pods.check_readiness(pods.fetch_pods(kube.get(), ns, timeout=t), ns)

    def events_check(t, cancel):
        # each Warning event is judged against the object it is about (the pods, the claims)
        since, label = events.deploy_time(env, kube.get(), timeout=t)
        found = events.fetch_events(kube.get(), ns, timeout=t)
        objects = events.fetch_objects(kube.get(), ns, events.kinds_to_read(found, since),
                                       timeout=t)
        return events.check_events(found, since, label, ns, objects)

    def minio_check(t, cancel):
        return storage.check_minio(*storage.fetch_minio(env, insecure=insecure,
                                                        timeout=min(t, 10.0)))

    def with_client(t, fn):
        client = kestra_client(env, kube, kestra_url=kestra_url, insecure=insecure, timeout=t,
                               warnings=warnings)
        if used is not None:
            used.setdefault("url", client.url)
            used.setdefault("route", client.route)
        try:
            return fn(client)
        finally:
            client.close()

    def api_check(t, cancel):
        return with_client(t, lambda c: kestra.check_api(c.url, *kestra.fetch_api(c)))

    def login_check(t, cancel):
        return with_client(t, lambda c: kestra.check_login(c.username, *kestra.fetch_login(c)))

    def e2e_check(t, cancel):
        # leave time for the delete within the item's budget
        return with_client(t, lambda c: kestra.check_e2e(kestra.run_e2e(
            c, timeout=max(t * 0.8 - 1.0, t / 2), cancel=cancel)))

    def configmap_check(t, cancel):
        return configmap.check_configmap(configmap.fetch_configmap(kube.get(), ns, timeout=t))

    table = {"pods": pods_check, "readiness": readiness_check, "events": events_check,
             "minio": minio_check, "kestra-api": api_check, "login": login_check,
             "e2e-flow": e2e_check, "configmap": configmap_check}
    return [Spec(i, table[i]) for i in ids]


def run_check(env: Environment, *, only: str | list[str] | None = None,
              wait: float | None = None, timeout: float = 60.0, kestra_url: str | None = None,
              insecure: bool = False, progress=None, kube=None) -> CheckReport:
    """Run the checklist (see the module doc). Never raises for a failed item; Ctrl-C is let
    through once running items had their chance to clean up (the e2e flow is deleted)."""
    ids = select(only)
    if timeout <= 0:
        raise InvalidInput("--timeout-per-check must be positive")
    started = time.perf_counter()
    report = CheckReport(env.name, env.namespace)
    if kube is not None:
        holder = Lazy(lambda: kube)
    else:
        from kestra_ops.adapters.kube import connect

        holder = Lazy(lambda: connect(env), lambda k: k.close())
    warnings: set[str] = set()
    used: dict = {}
    specs = build_specs(env, ids, kube=holder, kestra_url=kestra_url, insecure=insecure,
                        warnings=warnings, used=used)

    def note(message: str) -> None:
        if progress is None:
            return
        if progress.tty:
            progress.update(message)
        elif message.startswith(("waiting", "interrupted")):
            progress.info(f"  {message}")

    from kestra_ops.concurrency import preload

    preload("requests", "yaml")  # the checks run in threads and share these
    try:
        report.results = run_checks(specs, timeout=timeout, wait_for=wait, on_progress=note)
    finally:
        holder.close()
    report.seconds = time.perf_counter() - started
    report.warnings = sorted(warnings)
    if used:
        report.kestra_url, report.kestra_url_source = used["url"], used["route"]
    else:  # no Kestra item ran: the URL it would use when one is given (the proxy needs kube)
        from kestra_ops.wiring import chosen_url

        report.kestra_url, report.kestra_url_source = chosen_url(kestra_url, env)
    return report
