"""The post-deploy checklist as pure functions: fetched state -> :class:`CheckResult`.

One module per family (``pods``, ``events``, ``storage``, ``kestra``, ``configmap``), each with
pure judging functions (plain JSON in, a result out, in the style of Argo CD's health checks) and
thin fetchers that call the adapters. :mod:`kestra_ops.checks.runner` runs them concurrently,
each with its own timeout, and repeats the failing ones while ``--wait`` allows.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Any

PASS, WARN, FAIL = "pass", "warn", "fail"
STATUSES = (PASS, WARN, FAIL)

# the checklist, in the runbook's order
CHECK_IDS = ("pods", "readiness", "events", "minio", "kestra-api", "login", "e2e-flow",
             "configmap")

# what our chart creates (charts/kestra/templates)
CONFIGMAP = "kestra-config"
CONFIG_KEY = "application.yml"
DEPLOYMENT = "kestra-standalone"
POSTGRES_POD = "kestra-postgres-0"
SIDECAR = "istio-proxy"


@dataclass
class CheckResult:
    """One checklist item: pass / warn / fail, why, and the evidence (one line per detail;
    ``items`` carries the same evidence as data for JSON)."""

    id: str
    status: str
    reason: str
    details: list[str] = field(default_factory=list)
    seconds: float = 0.0
    items: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.status != FAIL

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "reason": self.reason,
                "seconds": round(self.seconds, 3), "attempts": self.attempts,
                "details": list(self.details), "items": list(self.items)}


def worst(statuses) -> str:
    statuses = set(statuses)
    return FAIL if FAIL in statuses else WARN if WARN in statuses else PASS


_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(value: Any) -> datetime.datetime | None:
    """An RFC 3339 time from Kubernetes or helm (``2026-11-21T10:00:00Z``, nanoseconds and
    offsets included) as an aware datetime; None when empty or unreadable."""
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
    if not isinstance(value, str) or not value.strip():
        return None
    text = _FRACTION.sub(r"\1", value.strip().replace("Z", "+00:00"))
    text = re.sub(r" ([+-]\d{4}) \w+$", r"\1", text)  # helm's "2026-11-21 10:00:00 +0000 UTC"
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def kube_get(kube, what: str, path: str, *, timeout: float = 10.0, **query) -> bytes:
    """GET one Kubernetes API path (``/api/v1/namespaces/ns/pods``) through the adapter's client
    and credentials; errors typed by :meth:`Kube.call`. The typed API methods of the client
    build pydantic models of the whole response type on first use (~1 s for pods); a check only
    needs the JSON."""
    params = [(k, str(v).lower() if isinstance(v, bool) else str(v))
              for k, v in query.items() if v is not None]
    return kube.call(what, _raw_get, kube.api_client, path, params, timeout)


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


def kube_json(kube, what: str, path: str, *, timeout: float = 10.0, **query) -> dict:
    """:func:`kube_get` parsed as JSON."""
    import json

    return json.loads(kube_get(kube, what, path, timeout=timeout, **query) or b"{}")


def age(seconds: float) -> str:
    """``95`` -> ``1m35s``; for evidence lines."""
    seconds = int(max(seconds, 0))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
