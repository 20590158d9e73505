"""What a family module declares: its checklist items (:class:`Check`, in its ``CHECKS`` list) and
its doctor rules (:class:`Rule`, in its ``FINDINGS`` list). :mod:`kestra_ops.checks.registry`
gathers them; nothing else lists them.

A check's function takes a :class:`Context` (the workflow builds it: connections are made on
first use, by the first item that needs one) and returns its :class:`~kestra_ops.results.Item`.
A rule's function takes the doctor's snapshot (plain data) and yields an Item per problem found
(``fix`` says what to do).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Iterable, Protocol

from kestra_ops.results import Item

# what a check may need: the workflow's context provides each (see Context)
NEEDS = ("kube", "helm", "kestra", "minio")
# what a doctor rule may need: the sources of the doctor's snapshot
SOURCES = ("pods", "configmap", "rbac", "release", "minio", "kestra", "basic-auth", "flows",
           "blacklist", "executions", "workloads")


class Context(Protocol):
    """What a check's function is given (one per attempt)."""

    env: Any  # the settings.Environment (name, namespace, release, minio endpoint...)
    namespace: str
    timeout: float  # this attempt's budget, for the check's own network calls
    cancel: threading.Event  # set on Ctrl-C: long waits poll it so their cleanups run

    @property
    def kube(self) -> Any:
        """The cluster's reader (adapters.kube_read.KubeReader), connected on first use."""

    def helm(self) -> Any:
        """The environment's helm (adapters.helm.Helm); raises a KestraOpsError without one."""

    def kestra(self) -> ContextManager[Any]:
        """A Kestra client (adapters.kestra_api.KestraClient) within this attempt's budget."""

    def minio(self) -> tuple[Any, str]:
        """(a MinIO health probe to use in ``with``, "") or (None, why there is none)."""

    def kestra_bucket(self) -> tuple[Any, str, str]:
        """(Storage with Kestra's key, Kestra's bucket, "") or (None, bucket, why not): the S3
        check of a store that is not MinIO (checks.storage.fetch_bucket)."""


@dataclass(frozen=True)
class Check:
    """One checklist item: its ``id`` (for ``--only``), ``help`` (what passes; the command's
    help lists it), its function and what it needs (among :data:`NEEDS`)."""

    id: str
    help: str
    run: Callable[[Context], Item]
    needs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = set(self.needs) - set(NEEDS)
        if unknown:
            raise ValueError(f"check {self.id}: unknown needs {sorted(unknown)}")


@dataclass(frozen=True)
class Rule:
    """One doctor rule: the finding ids it may report with what each means (the command's
    help lists them), its function (snapshot -> Items) and the snapshot sources it reads
    (among :data:`SOURCES`): when one could not be read, these findings were not checked."""

    findings: tuple[tuple[str, str], ...]  # (id, help)
    run: Callable[[Any], Iterable[Item]]
    needs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = set(self.needs) - set(SOURCES)
        if unknown:
            raise ValueError(f"rule {self.ids}: unknown sources {sorted(unknown)}")

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(i for i, _ in self.findings)
