"""check: the runbook's post-deploy checklist, each item pass / warn / fail with its time and why.

The items are those the families of :mod:`kestra_ops.checks` declare (ids for ``--only``, in
the registry's order); all independent, they run concurrently with their own timeout. With
``wait``, failing items run again until all pass or the time is up. Connections are made on
first use, by the first item that needs one, so ``--only minio`` never loads the Kubernetes
client. :func:`check` returns the command's :class:`~kestra_ops.results.Report`;
:func:`run_check` the :class:`CheckReport` other workflows (release, deploy's evidence) read.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

from kestra_ops.checks import registry
from kestra_ops.checks.runner import Spec, run_checks
from kestra_ops.errors import InvalidInput
from kestra_ops.results import FAIL, PASS, WARN, Item, Report, worst
from kestra_ops.settings import Environment

CHECK_IDS = registry.check_ids()
checklist_help = registry.checklist_help  # the command's help lists the items from here


@dataclass
class CheckReport:
    env: str
    namespace: str
    results: list[Item] = field(default_factory=list)
    seconds: float = 0.0
    kestra_url: str | None = None  # the URL the Kestra items used (never with credentials)
    kestra_url_source: str | None = None  # how it was chosen (flag, variable, config, proxy)
    warnings: list[str] = field(default_factory=list)
    context: str = ""  # the kube context in use, by name (the title says it)

    @property
    def ok(self) -> bool:
        return not any(r.status == FAIL for r in self.results)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.results) for s in (PASS, WARN, FAIL)}

    def failing(self) -> list[Item]:
        return [r for r in self.results if r.status == FAIL]

    def to_dict(self) -> dict:
        return {"env": self.env, "namespace": self.namespace, "kestra_url": self.kestra_url,
                "kestra_url_source": self.kestra_url_source,
                "ok": self.ok, "exit_code": self.exit_code, "seconds": round(self.seconds, 3),
                "counts": self.counts(), "warnings": list(self.warnings),
                "checks": [r.to_dict() for r in self.results]}

    def to_report(self) -> Report:
        """The command's report: the items, then ``check ENV: ok: N passed, ...``."""
        from kestra_ops.workflows.target import in_context

        counts = self.counts()
        verdict = "ok" if self.ok else "FAILED"
        return Report(
            "check", self.env, title=f"check {self.env} (namespace {self.namespace}"
                                     f"{in_context(self.context)})",
            status=worst(r.status for r in self.results), exit_code=self.exit_code,
            message=f"check {self.env}: {verdict}: {counts[PASS]} passed, {counts[WARN]} "
                    f"warning(s), {counts[FAIL]} failed ({self.seconds:.1f}s)",
            items=list(self.results), items_key="checks", warnings=list(self.warnings),
            data={"namespace": self.namespace, "kestra_url": self.kestra_url,
                  "kestra_url_source": self.kestra_url_source, "ok": self.ok,
                  "seconds": round(self.seconds, 3), "counts": counts})


def select(only: str | list[str] | None) -> list[str]:
    """The ids ``--only`` names (comma-separated, in checklist order); all without it."""
    return [c.id for c in registry.select(only)]


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


class Connections:
    """What the items of one run share: the Kubernetes connection and helm (each built once, on
    first use), how to reach Kestra and MinIO, and what the Kestra clients reported."""

    def __init__(self, env: Environment, *, kube=None, kestra_url: str | None = None,
                 insecure: bool = False):
        from kestra_ops.adapters.kube_read import KubeReader

        self.env, self.kestra_url, self.insecure = env, kestra_url, insecure
        if kube is not None:
            self._kube = Lazy(lambda: kube)
        else:
            from kestra_ops import wiring

            self._kube = Lazy(lambda: wiring.kube(env), lambda k: k.close())
        self.reader = Lazy(lambda: KubeReader(self._kube.get()))
        self.helm = Lazy(self._helm)
        self.warnings: set[str] = set()
        self.used: dict = {}  # url and route of the first Kestra client built

    def _helm(self):
        from kestra_ops import wiring

        return wiring.helm(self.env)

    def kestra_client(self, timeout: float):
        """A client for this environment with the item's time budget (one per item: sessions
        are not shared between threads). The Kubernetes connection is used only when needed
        (:func:`kestra_needs_kube`)."""
        from kestra_ops.wiring import client_for_env

        client = client_for_env(self.env, kube=self._kube.get()
                                if kestra_needs_kube(self.env, self.kestra_url) else None,
                                kestra_url=self.kestra_url, insecure=self.insecure,
                                timeout=max(min(timeout, 30.0), 0.5), retries=1)
        self.warnings.update(client.warnings)
        self.used.setdefault("url", client.url)
        self.used.setdefault("route", client.route)
        return client

    def minio_probe(self, timeout: float):
        from kestra_ops.adapters.minio_health import HealthProbe, base_url

        url = base_url(self.env.minio_endpoint, self.env.minio_secure)
        if url is None:
            return None, ""
        return HealthProbe(url, verify=not self.insecure, timeout=timeout,
                           ca_file=self.env.minio_ca_file), ""

    def kestra_bucket(self, timeout: float):
        """(Storage with Kestra's key, its bucket, "") or (None, bucket, why not): the S3
        check of a store that is not MinIO."""
        if self.insecure:
            from kestra_ops.storage_options import INSECURE_WARNING

            self.warnings.add(INSECURE_WARNING)
        return kestra_bucket(self.env, self.insecure, timeout)

    def close(self) -> None:
        self._kube.close()


class Attempt:
    """One attempt of one item: the :class:`~kestra_ops.checks.declare.Context` it is given."""

    def __init__(self, shared: Connections, timeout: float, cancel: threading.Event):
        self._shared = shared
        self.env, self.namespace = shared.env, shared.env.namespace
        self.timeout, self.cancel = timeout, cancel

    @property
    def kube(self):
        return self._shared.reader.get()

    def helm(self):
        return self._shared.helm.get()

    @contextmanager
    def kestra(self):
        client = self._shared.kestra_client(self.timeout)
        try:
            yield client
        finally:
            client.close()

    def minio(self):
        return self._shared.minio_probe(min(self.timeout, 10.0))

    def kestra_bucket(self):
        return self._shared.kestra_bucket(min(self.timeout, 10.0))


def kestra_bucket(env: Environment, insecure: bool, timeout: float):
    """(Storage, bucket, "") of Kestra's bucket with Kestra's key, or (None, bucket, why)."""
    import dataclasses

    from kestra_ops.wiring import storage_for_env

    if insecure and not env.storage_insecure:
        env = dataclasses.replace(env, storage_insecure=True)
    storage, why = storage_for_env(env, timeout=timeout)
    return storage, env.minio_bucket or "", why


def build_specs(shared: Connections, ids: list[str]) -> list[Spec]:
    """The runner's specs of the items ``ids`` (the registry's functions, each given an
    :class:`Attempt` per run)."""
    def runner(check):
        return lambda timeout, cancel: check.run(Attempt(shared, timeout, cancel))

    return [Spec(c.id, runner(c)) for c in registry.select(ids)]


def kestra_needs_kube(env: Environment, kestra_url: str | None) -> bool:
    """Whether reaching Kestra takes the Kubernetes API: for the service proxy (no URL from
    the flag, the variable or the file) or the basic-auth Secret (no password variable/file)."""
    import os

    from kestra_ops.credentials import BASIC_AUTH_PASSWORD as PASSWORD
    from kestra_ops.wiring import URL_VAR

    url = kestra_url or os.environ.get(URL_VAR) or env.kestra_url
    return not (url and (os.environ.get(PASSWORD.variable)
                         or os.environ.get(PASSWORD.file_variable)))


def run_check(env: Environment, *, only: str | list[str] | None = None,
              wait: float | None = None, timeout: float = 60.0, kestra_url: str | None = None,
              insecure: bool = False, progress=None, kube=None) -> CheckReport:
    """Run the checklist (see the module doc). Never raises for a failed item; Ctrl-C is let
    through once running items had their chance to clean up (the e2e flow is deleted)."""
    ids = select(only)
    if timeout <= 0:
        raise InvalidInput("--timeout-per-check must be positive")
    needs = {need for c in registry.select(ids) for need in c.needs}
    if kube is None and ({"kube", "helm"} & needs
                         or "kestra" in needs and kestra_needs_kube(env, kestra_url)):
        from kestra_ops.adapters.kube import require_config

        require_config(env)  # no kubeconfig is invalid input (exit 2), not a failed item
    started = time.perf_counter()
    report = CheckReport(env.name, env.namespace)
    shared = Connections(env, kube=kube, kestra_url=kestra_url, insecure=insecure)
    shown = []

    def note(message: str) -> None:
        if progress is None:
            return
        if progress.tty:
            progress.update(message)
            shown.append(message)
        elif message.startswith(("waiting", "interrupted")):
            progress.info(f"  {message}")

    from kestra_ops.concurrency import preload

    preload("requests", "yaml")  # the checks run in threads and share these
    try:
        report.results = run_checks(build_specs(shared, ids), timeout=timeout, wait_for=wait,
                                    on_progress=note)
    finally:
        shared.close()
    report.seconds = time.perf_counter() - started
    if shown:  # the transient status line off the terminal before the result
        if hasattr(progress, "clear"):
            progress.clear()
        else:  # (a Recorder: its own steps follow) a line that stays replaces it
            progress.info(f"  checked {', '.join(ids)} ({report.seconds:.1f}s)")
    report.warnings = sorted(shared.warnings)
    if shared.used:
        report.kestra_url, report.kestra_url_source = shared.used["url"], shared.used["route"]
    else:  # no Kestra item ran: the URL it would use when one is given (the proxy needs kube)
        from kestra_ops.wiring import chosen_url

        report.kestra_url, report.kestra_url_source = chosen_url(kestra_url, env)
    return report


def check(env: Environment, **options) -> Report:
    """The ``check`` command's report (options: those of :func:`run_check`); its progress
    starts with the cluster it looks at."""
    from kestra_ops.workflows.target import context_name, target

    context = context_name(env)  # the title names it too (a CI log has no progress)
    progress = options.get("progress")
    if progress is not None:
        progress.info(f"check {env.name}: {target(env, context)}")
    result = run_check(env, **options)
    result.context = context
    return result.to_report()
