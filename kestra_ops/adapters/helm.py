"""Helm releases through a small synchronous facade: history, status, values, manifest, upgrade,
rollback, dependency update. Works with Helm 3.x and 4.x (the version is detected once per binary).

Reads (history, status, get values, get manifest) go through ``pyhelm3``'s :class:`Command`, built
on first use with ``executable=`` the helm that :func:`helm_cli.find_helm` resolves, its ``run``
replaced (:func:`helm_cli.reads_command`: no shell, only :func:`childenv.for_helm`'s environment,
as for every helm we start). pyhelm3's ``Client`` is never built: it runs ``helm version`` through
a shell at construction, and we detect the version ourselves (:func:`helm_cli.helm_version`).

Changes (upgrade --install, rollback) run the binary directly with an argument list, because
pyhelm3 cannot express them safely here: it sends a values *dict* on stdin (we pass the
environment's values *files*, merged by helm's own rules), adds ``--create-namespace`` by default
(we never create namespaces), adds ``--wait-for-jobs`` to every waiting rollback, and runs helm
under ``/bin/sh -c``, so cancelling it stops the shell and leaves helm running. Here an interrupt
(Ctrl-C) or our own deadline sends helm SIGINT, which helm handles by marking the release failed
(and, with rollback-on-failure, rolling it back) instead of leaving it ``pending-upgrade``; a
second Ctrl-C, or helm not finishing within ``interrupt_grace``, kills it.

Helm 4 renamed ``--atomic`` to ``--rollback-on-failure``; the flag matching the binary is sent.
Helm 4 applies server-side (field manager ``helm``): a field another manager wrote since (``config
patch``, ``kubectl edit``) makes the upgrade and the rollback fail with a conflict unless
``--force-conflicts``, which ``force_conflicts=True`` sends (on Helm 3, whose three-way merge
reverts such changes anyway, it sends nothing).
Errors are typed and one line: a missing release is :class:`NotFound`, another operation in
progress is :class:`Conflict`, any other failure :class:`OperationFailed` with helm's error line.
Values are returned to the caller, never printed.

This class is the one way kestra-ops reaches helm: ``lint`` and ``template`` (the chart lint and the
deploy diff) are its methods too (run by :mod:`kestra_ops.adapters.helm_cli`).
"""

from __future__ import annotations

import json
import signal
import subprocess
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

from kestra_ops.adapters import childenv, helm_cli
from kestra_ops.errors import Conflict, InvalidInput, NotFound, OperationFailed, Unreachable

GOOD_STATUSES = ("deployed", "superseded")
PENDING_STATUSES = ("pending-install", "pending-upgrade", "pending-rollback")


@dataclass(frozen=True)
class Revision:
    """One line of ``helm history``."""

    revision: int
    status: str
    chart: str
    app_version: str
    updated: str
    description: str

    @property
    def pending(self) -> bool:
        return self.status.startswith("pending-")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ReleaseStatus:
    """``helm status``: the release's latest revision."""

    name: str
    namespace: str
    revision: int
    status: str
    description: str
    updated: str

    @property
    def pending(self) -> bool:
        return self.status.startswith("pending-")

    def to_dict(self) -> dict:
        return asdict(self)


class UpgradeFailed(OperationFailed):
    """``helm upgrade`` failed; ``rolled_back`` says whether helm restored the previous revision
    (rollback-on-failure) or uninstalled a failed first install."""

    def __init__(self, message: str, *, rolled_back: bool, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.rolled_back = rolled_back


def parse_duration(value: str | int | float) -> float:
    """Seconds of a duration: the one grammar of :mod:`kestra_ops.durations`."""
    from kestra_ops import durations

    return durations.parse(value)


def go_duration(value: str | int | float) -> str:
    """The duration as helm's --timeout takes it (:func:`kestra_ops.durations.go`)."""
    from kestra_ops import durations

    return durations.go(value)


def error_line(stderr: str) -> str:
    """Helm's error as one line: from its last ``Error:`` line to the end (helm 4 wraps some
    errors over several lines), without the ``Error:`` prefix; else the last non-empty line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return "helm failed without a message"
    starts = [i for i, line in enumerate(lines) if line.startswith("Error:")]
    if not starts:
        return lines[-1]
    text = "; ".join(lines[starts[-1]:])
    return text[len("Error:"):].strip()


def _names(**names: str | None) -> None:
    """The last guard of helm's argv: a release or namespace that is empty or starts with '-'
    would be read by helm as a flag (settings refuse them first, as non-DNS labels)."""
    for what, value in names.items():
        if value is not None and (not str(value) or str(value).startswith("-")):
            raise InvalidInput(f"{what} {str(value)!r} is not a valid name (it would reach helm "
                               "as a flag)")


class Helm:
    """Helm for one kube context. Building it runs nothing; the binary is resolved on first use."""

    def __init__(self, *, helm: str | None = None, context: str | None = None,
                 kubeconfig: str | None = None, interrupt_grace: float = 120.0):
        self._helm = helm
        self.context = context
        self.kubeconfig = kubeconfig
        self.interrupt_grace = interrupt_grace
        self.killed = False  # a second Ctrl-C (or no end within the grace) killed helm

    @classmethod
    def for_env(cls, env, *, helm: "str | Helm | None" = None) -> "Helm":
        """The environment's context and kubeconfig (``env.kubeconfig``, as for the Kubernetes
        adapter); ``helm`` names the binary (given a :class:`Helm` already, that one)."""
        if isinstance(helm, Helm):
            return helm
        return cls(helm=helm, context=env.context, kubeconfig=getattr(env, "kubeconfig", None))

    @cached_property
    def executable(self) -> str:
        return helm_cli.find_helm(self._helm)

    @property
    def version(self) -> tuple[int, int, int]:
        return helm_cli.helm_version(self.executable)

    def _force_args(self, force_conflicts: bool) -> list[str]:
        return ["--force-conflicts"] if force_conflicts and self.version[0] >= 4 else []

    @property
    def rollback_flag(self) -> str:
        """``--rollback-on-failure`` on Helm 4, ``--atomic`` on Helm 3."""
        return "--rollback-on-failure" if self.version[0] >= 4 else "--atomic"

    @cached_property
    def _command(self):
        import logging

        # pyhelm3 logs every failed command (a first install's "release: not found" too) as a
        # warning; without a handler Python prints it on stderr. Our typed errors say it once.
        logging.getLogger("pyhelm3").addHandler(logging.NullHandler())
        return helm_cli.reads_command()(executable=self.executable, kubecontext=self.context,
                                        kubeconfig=self.kubeconfig)

    def _conn_args(self) -> list[str]:
        args = ["--kube-context", self.context] if self.context else []
        return args + (["--kubeconfig", self.kubeconfig] if self.kubeconfig else [])

    # ------------------------------------------------------------------ reads (pyhelm3)
    def _read(self, what: str, release: str, namespace: str, coro, revision: int | None = None):
        import asyncio  # here, not at the top: ~16 ms that lint, template and upgrade never need

        from pyhelm3 import errors

        try:
            _names(release=release, namespace=namespace)
        except InvalidInput:
            coro.close()
            raise
        try:
            return asyncio.run(coro)
        except errors.ReleaseNotFoundError:
            raise _not_found(release, namespace, revision) from None
        except errors.Error as err:
            line = error_line(err.stderr.decode(errors="replace"))
            if isinstance(err, errors.ConnectionError) or "cluster unreachable" in line.lower():
                raise Unreachable(f"helm {what} {release}: {line}") from None
            raise OperationFailed(f"helm {what} {release}: {line}") from None

    def history(self, release: str, namespace: str) -> list[Revision]:
        """Every stored revision, oldest first."""
        rows = self._read("history", release, namespace,
                          self._command.history(release, namespace=namespace))
        return sorted((_revision(row) for row in rows or []), key=lambda r: r.revision)

    def status(self, release: str, namespace: str, revision: int | None = None) -> ReleaseStatus:
        data = self._read("status", release, namespace,
                          self._command.status(release, namespace=namespace, revision=revision),
                          revision)
        info = data.get("info") or {}
        return ReleaseStatus(name=data.get("name", release),
                             namespace=data.get("namespace", namespace),
                             revision=int(data.get("version", 0)), status=info.get("status", ""),
                             description=info.get("description", ""),
                             updated=info.get("last_deployed", ""))

    def current_values(self, release: str, namespace: str, revision: int | None = None) -> dict:
        """A revision's user-supplied values (``helm get values -o json``); may hold secrets."""
        values = self._read("get values", release, namespace, self._command.get_values(
            release, namespace=namespace, revision=revision), revision)
        return values or {}

    def manifest(self, release: str, namespace: str, revision: int | None = None) -> str:
        """The rendered manifest of a revision (``helm get manifest``)."""
        args = ["get", "manifest", release, "--namespace", namespace]
        if revision is not None:
            args += ["--revision", str(revision)]
        out = self._read("get manifest", release, namespace, self._command.run(args), revision)
        return out.decode("utf-8", errors="replace")

    # ------------------------------------------------------------------ offline (direct)
    def lint(self, chart: Path | str, values_files: Sequence[Path | str], *,
             namespace: str = "default", strict: bool = True) -> helm_cli.HelmResult:
        """``helm lint [--strict]`` with the values files in order (no cluster needed)."""
        _names(namespace=namespace)
        return helm_cli.lint(Path(chart), [Path(p) for p in values_files], strict=strict,
                             namespace=namespace, helm=self.executable)

    def template(self, chart: Path | str, values_files: Sequence[Path | str], *, release: str,
                 namespace: str, kube_version: str | None = None,
                 api_versions: Sequence[str] = ()) -> helm_cli.HelmResult:
        """``helm template`` with the values files in order: the rendered manifests on stdout
        (no cluster needed; ``api_versions``: what the chart may assume the cluster serves)."""
        _names(release=release, namespace=namespace)
        return helm_cli.template(Path(chart), [Path(p) for p in values_files], release=release,
                                 namespace=namespace, kube_version=kube_version,
                                 helm=self.executable, api_versions=api_versions)

    # ------------------------------------------------------------------ changes (direct)
    def upgrade_install(self, release: str, chart: Path | str, namespace: str,
                        values_files: Sequence[Path | str], *, timeout: str | int | float,
                        wait: bool = True, rollback_on_failure: bool = True,
                        dry_run: bool = False, grace: float = 30.0,
                        force_conflicts: bool = False,
                        on_interrupt: Callable[[], None] | None = None) -> Revision:
        """``helm upgrade --install`` with the values files in order; never creates the namespace.

        Returns the new revision (with ``dry_run``, the one that would be made). Raises
        :class:`UpgradeFailed` when helm fails, :class:`Conflict` when another operation holds
        the release (``pending-*``). helm is stopped ``grace`` seconds after its own timeout (twice
        its timeout with rollback-on-failure, which waits again while rolling back).
        """
        _names(release=release, namespace=namespace)
        helm_timeout = go_duration(timeout)
        args = ["upgrade", release, str(chart), "--install", "--namespace", namespace,
                "--timeout", helm_timeout, "--output", "json"]
        for path in values_files:
            args += ["--values", str(path)]
        if wait:
            args.append("--wait")
        if rollback_on_failure:
            args.append(self.rollback_flag)
        args += self._force_args(force_conflicts)
        if dry_run:
            args.append("--dry-run=server" if self.version >= (3, 13, 0) else "--dry-run")
        deadline = parse_duration(timeout) * (2 if rollback_on_failure else 1) + grace
        result = self._supervise("upgrade", args, deadline, on_interrupt)
        if not result.ok:
            line = error_line(result.stderr)
            if "another operation" in line and "in progress" in line:
                raise Conflict(f"helm upgrade {release}: {line}", hint=_PENDING_HINT)
            if "release: not found" in line:
                raise _not_found(release, namespace)
            rolled_back = "has been rolled back" in line or "has been uninstalled" in line
            raise UpgradeFailed(f"helm upgrade {release}: {line}", rolled_back=rolled_back)
        try:
            data = json.loads(result.stdout[result.stdout.index("{"):])
        except ValueError:
            raise OperationFailed(f"helm upgrade {release}: unreadable output") from None
        meta = ((data.get("chart") or {}).get("metadata") or {})
        info = data.get("info") or {}
        return Revision(revision=int(data.get("version", 0)), status=info.get("status", ""),
                        chart=f"{meta.get('name', '?')}-{meta.get('version', '?')}",
                        app_version=str(meta.get("appVersion", "")),
                        updated=info.get("last_deployed", ""),
                        description=info.get("description", ""))

    def rollback(self, release: str, namespace: str, revision: int, *,
                 timeout: str | int | float, wait: bool = True, grace: float = 30.0,
                 force_conflicts: bool = False,
                 on_interrupt: Callable[[], None] | None = None) -> Revision:
        """``helm rollback RELEASE REVISION``; returns the new revision helm wrote."""
        _names(release=release, namespace=namespace)
        args = ["rollback", release, str(int(revision)), "--namespace", namespace,
                "--timeout", go_duration(timeout)]
        if wait:
            args.append("--wait")
        args += self._force_args(force_conflicts)
        result = self._supervise("rollback", args, parse_duration(timeout) + grace, on_interrupt)
        if not result.ok:
            line = error_line(result.stderr)
            if "release: not found" in line or f"has no {int(revision)} version" in line:
                raise _not_found(release, namespace, revision)
            if "another operation" in line and "in progress" in line:
                raise Conflict(f"helm rollback {release}: {line}", hint=_PENDING_HINT)
            raise OperationFailed(f"helm rollback {release} to revision {revision}: {line}")
        history = self.history(release, namespace)
        if not history:
            raise OperationFailed(f"helm rollback {release}: no history after the rollback")
        return history[-1]

    def dependency_update(self, chart: Path | str) -> bool:
        """``helm dependency update`` when Chart.yaml declares dependencies; False when none."""
        chart = Path(chart)
        if not helm_cli.chart_has_dependencies(chart):
            return False
        result = helm_cli.run_helm(["dependency", "update", str(chart)], helm=self.executable)
        if not result.ok:
            raise OperationFailed(f"helm dependency update {chart}: "
                                  f"{error_line(result.stderr or result.stdout)}")
        return True

    def _supervise(self, what: str, args: list[str], deadline: float,
                   on_interrupt: Callable[[], None] | None) -> helm_cli.HelmResult:
        cmd = [self.executable, *args, *self._conn_args()]
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True,
                                    env=childenv.for_helm())
        except OSError as err:
            raise OperationFailed(f"cannot run {cmd[0]}: {err.strerror or err}") from None
        try:
            out, err = proc.communicate(timeout=deadline)
        except subprocess.TimeoutExpired:
            self._stop(proc)
            raise OperationFailed(f"helm {what} did not finish within {deadline:g}s and was "
                                  "stopped", hint=_PENDING_HINT) from None
        except KeyboardInterrupt:
            if on_interrupt:
                on_interrupt()
            self._stop(proc)
            raise
        return helm_cli.HelmResult(cmd, proc.returncode, out, err)

    def _stop(self, proc: subprocess.Popen) -> None:
        """SIGINT (helm marks the release failed, and rolls back when asked to), then kill."""
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=self.interrupt_grace)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            proc.kill()
            proc.communicate()
            self.killed = True


_PENDING_HINT = ("an interrupted helm leaves the release pending-*: see `kestra-ops history`, "
                 "then `kestra-ops rollback`")


def _not_found(release: str, namespace: str, revision: int | None = None) -> NotFound:
    if revision is not None:
        return NotFound(f"release {release!r} in namespace {namespace!r} has no revision "
                        f"{revision}")
    return NotFound(f"release {release!r} not found in namespace {namespace!r}")


def _revision(row: dict) -> Revision:
    return Revision(revision=int(row.get("revision", 0)), status=str(row.get("status", "")),
                    chart=str(row.get("chart", "")), app_version=str(row.get("app_version", "")),
                    updated=str(row.get("updated") or ""),
                    description=str(row.get("description", "")))
