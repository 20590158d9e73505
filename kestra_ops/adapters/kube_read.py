"""Reads of the Kubernetes API as plain JSON, for the checks, the doctor and the rollout wait.

The typed API methods of the client build pydantic models of the whole response type on first
use (~1 s for pods); a judge only needs the JSON. :func:`get` sends one GET through the
:class:`~kestra_ops.adapters.kube.Kube` client's connection and credentials; errors are typed by
:meth:`Kube.call` (403 PermissionDenied, 404 NotFound, no connection Unreachable, in words).
:class:`KubeReader` names the reads (pods, events, a list of a kind, one object, a container's
log); :func:`read_json` runs one typed API call answered as JSON (no client models);
:func:`restart_deployment` is ``kubectl rollout restart``; :meth:`KubeReader.pod_proxy_get` asks
one pod's port through the API server's pod proxy and returns whatever HTTP answer comes back;
:func:`served_apis` reads the discovery documents (the API versions ``helm template`` is told
the cluster serves).
"""

from __future__ import annotations

import datetime
import json
from typing import Any, Callable

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
LOG_LINES = 20
PROXY_BODY_LIMIT = 64 * 1024  # a health answer is small: never read more of a pod's answer


def get(kube, what: str, path: str, *, timeout: float = 10.0, **query) -> bytes:
    """GET one API path (``/api/v1/namespaces/ns/pods``); ``query`` values None are left out,
    booleans sent as ``true``/``false``."""
    params = [(k, str(v).lower() if isinstance(v, bool) else str(v))
              for k, v in query.items() if v is not None]
    return kube.call(what, _raw_get, kube.api_client, path, params, timeout)


def get_json(kube, what: str, path: str, *, timeout: float = 10.0, **query) -> dict:
    """:func:`get` parsed as JSON."""
    return json.loads(get(kube, what, path, timeout=timeout, **query) or b"{}")


def _raw_get(api, path: str, params: list, timeout: float) -> bytes:
    from kubernetes.client.exceptions import ApiException

    headers = {"Accept": "application/json, */*"}
    if hasattr(api, "param_serialize"):  # kubernetes >= 33 (pydantic client)
        request = api.param_serialize("GET", path, query_params=params, header_params=headers,
                                      auth_settings=["BearerToken"])
        response = api.call_api(*request, _request_timeout=timeout)
        response.read()
    else:  # the older generated client
        response = api.call_api(path, "GET", query_params=params, header_params=headers,
                                auth_settings=["BearerToken"], _preload_content=False,
                                _return_http_data_only=True, _request_timeout=timeout)
    if not 200 <= response.status < 300:
        raise ApiException(http_resp=response)
    return response.data or b""


def _raw_answer(api, path: str, timeout: float, limit: int) -> tuple[int, bytes]:
    """GET ``path``: (HTTP status, at most ``limit`` bytes of the body), whatever the status."""
    headers = {"Accept": "application/json, */*"}
    if hasattr(api, "param_serialize"):  # kubernetes >= 33 (pydantic client)
        request = api.param_serialize("GET", path, header_params=headers,
                                      auth_settings=["BearerToken"])
        raw = api.call_api(*request, _request_timeout=timeout).response  # not preloaded
    else:  # the older generated client
        raw = api.call_api(path, "GET", header_params=headers, auth_settings=["BearerToken"],
                           _preload_content=False, _return_http_data_only=True,
                           _request_timeout=timeout)
    try:
        data = raw.read(limit) or b""
        if raw.read(1):  # over the limit: the connection is dropped, not read to its end
            raw.close()
        return raw.status, data
    finally:
        raw.release_conn()  # back to the client's pool (a closed one is reopened there)


def read_json(kube, what: str, fn: Callable[..., Any], *args, **kwargs) -> dict:
    """One typed API call through :meth:`Kube.call`, answered as plain JSON (no client models)."""
    response = kube.call(what, fn, *args, _preload_content=False, **kwargs)
    return json.loads(response.data or b"{}")


def restart_deployment(kube, namespace: str, name: str) -> dict:
    """``kubectl rollout restart deployment/NAME``: stamp the pod template with restartedAt.

    Returns the patched Deployment. The stamp has sub-second precision so two restarts within
    one second (a patch, then its automatic restore) still roll out a new ReplicaSet each.
    """
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    return read_json(kube, f"deployment {name}", kube.apps.patch_namespaced_deployment, name,
                     namespace, body, _content_type="application/strategic-merge-patch+json")


def served_apis(kube, wanted, *, timeout: float = 10.0) -> list[str]:
    """Which of ``wanted`` (``group/version`` or ``group/version/Kind``, helm's
    ``--api-versions`` forms) the cluster serves, from its discovery documents: one GET of
    ``/apis``, and one of ``/apis/GROUP/VERSION`` for each wanted kind whose group version is
    served. Discovery is readable by every authenticated identity (system:discovery); a
    refused or missing document counts as not served."""
    from kestra_ops.errors import NotFound, PermissionDenied

    try:
        groups = get_json(kube, "API discovery", "/apis", timeout=timeout).get("groups") or []
    except (NotFound, PermissionDenied):
        return []
    versions = {v.get("groupVersion") for g in groups for v in g.get("versions") or []}
    served, kinds = [], {}
    for api in wanted:
        group_version, _, kind = api.rpartition("/") if api.count("/") == 2 else (api, "", "")
        if group_version not in versions:
            continue
        if not kind:
            served.append(api)
            continue
        if group_version not in kinds:
            try:
                listing = get_json(kube, f"API discovery of {group_version}",
                                   f"/apis/{group_version}", timeout=timeout)
            except (NotFound, PermissionDenied):
                listing = {}
            kinds[group_version] = {r.get("kind") for r in listing.get("resources") or []}
        if kind in kinds[group_version]:
            served.append(api)
    return served


def _base(group_version: str) -> str:
    return "/api/v1" if group_version == "v1" else f"/apis/{group_version}"


class KubeReader:
    """Named reads of one cluster (see the module doc); every method takes the call's
    ``timeout``. The object the checks' and the doctor's fetchers are given."""

    def __init__(self, kube):
        self.kube = kube

    @property
    def host(self) -> str:
        return self.kube.host

    def objects(self, plural: str, namespace: str, *, group_version: str = "v1",
             timeout: float = 10.0, label_selector: str | None = None,
             field_selector: str | None = None) -> list[dict]:
        """Every object of a kind in the namespace (``items`` of the list)."""
        what = f"{plural} in {namespace}"
        return get_json(self.kube, what, f"{_base(group_version)}/namespaces/{namespace}/{plural}",
                        timeout=timeout, labelSelector=label_selector or None,
                        fieldSelector=field_selector or None).get("items") or []

    def read(self, plural: str, namespace: str, name: str, *, group_version: str = "v1",
             timeout: float = 10.0, missing_ok: bool = False) -> dict | None:
        """One object; None when it does not exist and ``missing_ok``, else NotFound."""
        from kestra_ops.errors import NotFound

        kind = plural[:-1] if plural.endswith("s") else plural
        try:
            return get_json(self.kube, f"{kind} {name}",
                            f"{_base(group_version)}/namespaces/{namespace}/{plural}/{name}",
                            timeout=timeout)
        except NotFound:
            if missing_ok:
                return None
            raise

    def pods(self, namespace: str, *, timeout: float = 10.0,
             label_selector: str | None = None) -> list[dict]:
        return self.objects("pods", namespace, timeout=timeout, label_selector=label_selector)

    def events(self, namespace: str, *, timeout: float = 10.0,
               field_selector: str | None = None) -> list[dict]:
        return self.objects("events", namespace, timeout=timeout, field_selector=field_selector)

    def log(self, namespace: str, pod: str, container: str, *, previous: bool = False,
            lines: int = LOG_LINES, timeout: float = 10.0) -> list[str]:
        """The last ``lines`` of a container's log (of its previous instance with ``previous``),
        as text lines (undecodable bytes replaced)."""
        data = get(self.kube, f"log of pod {pod} container {container}",
                   f"/api/v1/namespaces/{namespace}/pods/{pod}/log", timeout=timeout,
                   container=container, previous=previous or None, tailLines=lines)
        return data.decode("utf-8", errors="replace").splitlines()

    def pod_proxy_get(self, namespace: str, pod: str, port: int, path: str, *,
                      timeout: float = 10.0) -> tuple[int, bytes]:
        """GET ``path`` on ``port`` of ``pod`` through the API server's pod proxy
        (``/api/v1/namespaces/NS/pods/POD:PORT/proxy/PATH``; the caller needs ``get`` on
        ``pods/proxy``), with the kubeconfig's credentials: (HTTP status, body, at most
        :data:`PROXY_BODY_LIMIT` bytes) of every answer, the pod's own or the API server's
        (a refusal, a pod it could not reach: a ``Status`` object). Only no answer at all
        raises (:class:`~kestra_ops.errors.Unreachable`, in words)."""
        from urllib.parse import quote

        url = (f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/"
               f"{quote(pod, safe='')}:{int(port)}/proxy/{path.lstrip('/')}")
        return self.kube.call(f"pod {pod} port {port} (pod proxy)", _raw_answer,
                              self.kube.api_client, url, timeout, PROXY_BODY_LIMIT)
