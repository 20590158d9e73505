"""Kubernetes through the official client: kubeconfig + context, or in-cluster config.

The client is imported only when a :class:`Kube` is built (it costs ~0.3 s), and every call goes
through :meth:`Kube.call`, which turns the client's exceptions into one-line typed errors naming
the resource: 403 -> PermissionDenied, 404 -> NotFound, 409 -> Conflict, no connection ->
Unreachable, saying what happened in words (connection refused, timed out, name not resolved, TLS
certificate verify failed: :mod:`kestra_ops.adapters.neterr`).

Every write names its field manager, :data:`FIELD_MANAGER` (``kestra-ops``), never the client's
default (``OpenAPI-Generator``): the API server records who owns each field (managedFields), and a
server-side apply (Helm 4) that meets a field owned by someone else names that owner. Writes go
through :meth:`Kube.call` too, which adds ``field_manager`` to every ``create_*``, ``replace_*``
and ``patch_*`` call that does not name one.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import Any, Callable

from kestra_ops.errors import (Conflict, InvalidInput, NotFound, OperationFailed,
                               PermissionDenied, Unreachable)


FIELD_MANAGER = "kestra-ops"
_WRITES = ("create_", "replace_", "patch_")


class Kube:
    def __init__(self, *, context: str | None = None, kubeconfig: str | None = None,
                 namespace: str):
        from kubernetes import client

        self.namespace = namespace
        self.context = context
        configuration, self.source = load_configuration(context=context, kubeconfig=kubeconfig)
        configuration.retries = 1
        self.host = configuration.host
        self.api_client = client.ApiClient(configuration)
        self._client = client

    @cached_property
    def core(self):
        return self._client.CoreV1Api(self.api_client)

    @cached_property
    def apps(self):
        return self._client.AppsV1Api(self.api_client)

    @cached_property
    def coordination(self):
        return self._client.CoordinationV1Api(self.api_client)

    @cached_property
    def authorization(self):
        return self._client.AuthorizationV1Api(self.api_client)

    @cached_property
    def version_api(self):
        return self._client.VersionApi(self.api_client)

    def call(self, what: str, fn: Callable[..., Any], *args, **kwargs) -> Any:
        """Run one API call; ``what`` names the resource in any error ("configmap kestra-config")."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        if getattr(fn, "__name__", "").startswith(_WRITES):
            kwargs.setdefault("field_manager", FIELD_MANAGER)
        try:
            return fn(*args, **kwargs)
        except ApiException as err:
            reason = _reason(err)
            if err.status == 403:
                raise PermissionDenied(f"{what}: forbidden: {reason}") from None
            if err.status == 404:
                raise NotFound(f"{what}: not found") from None
            if err.status == 409:
                raise Conflict(f"{what}: conflict: {reason}") from None
            if err.status == 401:
                raise PermissionDenied(f"{what}: unauthorized: check the kubeconfig credentials")
            raise OperationFailed(f"{what}: API server answered {err.status}: {reason}") from None
        except HTTPError as err:
            from kestra_ops.adapters.neterr import describe

            raise Unreachable(f"cannot reach the Kubernetes API at {self.host}: "
                              f"{describe(err)}") from None

    def server_version(self) -> str:
        info = self.call("API server version", self.version_api.get_code)
        return info.git_version

    def close(self) -> None:
        self.api_client.close()


def _reason(err) -> str:
    import json

    try:
        body = json.loads(err.body or "{}")
        return body.get("message") or err.reason
    except (TypeError, ValueError):
        return str(err.reason)


def _in_cluster(context: str | None, kubeconfig: str | None) -> bool:
    return (kubeconfig is None and not os.environ.get("KUBECONFIG") and context is None
            and bool(os.environ.get("KUBERNETES_SERVICE_HOST")))


def load_configuration(*, context: str | None = None, kubeconfig: str | None = None):
    """(the client's Configuration, where it came from): in-cluster (no kubeconfig, KUBECONFIG
    or context, and a pod's service host), else the kubeconfig (``kubeconfig``, else
    $KUBECONFIG, else ~/.kube/config) and its ``context``. No usable configuration is invalid
    input (:class:`InvalidInput`, exit 2) naming the file and the context: no kubeconfig
    file, an unknown context, a file that does not parse."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    if _in_cluster(context, kubeconfig):
        try:
            config.load_incluster_config(client_configuration=configuration)
        except (ConfigException, OSError) as err:
            raise InvalidInput(f"cannot load the in-cluster Kubernetes configuration: {err}",
                               hint=_HINT) from None
        return configuration, "in-cluster"
    # the client reads $KUBECONFIG once, at import: read it again for every connection
    given = kubeconfig or os.environ.get("KUBECONFIG") or None
    _require_files(kubeconfig)
    try:
        config.load_kube_config(config_file=given, context=context,
                                client_configuration=configuration)
    except (ConfigException, OSError, ValueError, TypeError, AttributeError) as err:
        where = given or os.path.expanduser("~/.kube/config")
        about = f" (context {context})" if context else ""
        raise InvalidInput(f"cannot load Kubernetes configuration from {where}{about}: {err}",
                           hint=_HINT) from None
    return configuration, f"kubeconfig context {context or '(current)'}"


_HINT = ("point --kubeconfig (KESTRA_OPS_KUBECONFIG, kubeconfig in kestra-ops.yaml, else "
         "KUBECONFIG) at a kubeconfig, and --kube-context (KESTRA_OPS_CONTEXT, context in "
         "kestra-ops.yaml, else its current context) at one of its contexts")


def _require_files(kubeconfig: str | None) -> None:
    """A kubeconfig that does not exist is named, not "Invalid kube-config file"."""
    given = kubeconfig or os.environ.get("KUBECONFIG") or None
    origin = ("--kubeconfig, KESTRA_OPS_KUBECONFIG or kestra-ops.yaml" if kubeconfig else
              "KUBECONFIG" if given else
              "the default; KUBECONFIG is not set")
    paths = [p for p in (given or os.path.expanduser("~/.kube/config")).split(os.pathsep) if p]
    if not any(os.path.isfile(p) for p in paths):
        raise InvalidInput(f"no kubeconfig: {os.pathsep.join(paths) or repr(given)} ({origin}) "
                           "does not exist, and this is not a pod (no in-cluster "
                           "configuration)", hint=_HINT)


def require_config(env) -> None:
    """Refuse (:class:`InvalidInput`, exit 2) before anything runs when ``env`` has no usable
    Kubernetes configuration: commands that need the cluster (and helm, which reads the same
    kubeconfig) fail as invalid input, not as a failed check."""
    load_configuration(context=env.context, kubeconfig=getattr(env, "kubeconfig", None))


def current_context(kubeconfig: str | None = None) -> str | None:
    """The name of the kubeconfig's current context (``kubeconfig``, else $KUBECONFIG, else
    ~/.kube/config), or None when there is none or the file cannot be read."""
    try:
        from kubernetes import config

        _, current = config.list_kube_config_contexts(
            config_file=kubeconfig or os.environ.get("KUBECONFIG") or None)
        return (current or {}).get("name")
    except Exception:  # noqa: BLE001 - a name to show, never a verdict
        return None


def context_in_use(env) -> str:
    """The kube context ``env`` uses, by name: its own, else the kubeconfig's current context
    ("in-cluster" in a pod without a kubeconfig; "(current)" when the file cannot say)."""
    if env.context:
        return str(env.context)
    kubeconfig = getattr(env, "kubeconfig", None)
    if _in_cluster(None, kubeconfig):
        return "in-cluster"
    return str(current_context(kubeconfig) or "(current)")


def connect(env) -> Kube:
    """A :class:`Kube` for an environment (its context, namespace, and kubeconfig:
    :attr:`kestra_ops.settings.Environment.kubeconfig`); no usable configuration is
    :class:`InvalidInput` (exit 2) naming the file and context."""
    return Kube(context=env.context, kubeconfig=getattr(env, "kubeconfig", None),
                namespace=env.namespace)
