"""ConfigMaps, Secrets and Deployments read and written as plain JSON (no client models), through
:meth:`kestra_ops.adapters.kube.Kube.call` (typed one-line errors; every write named with field
manager ``kestra-ops``). Writes that replace an object carry the resourceVersion that was read,
so a concurrent change is a :class:`~kestra_ops.errors.Conflict` and nothing is written."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Callable

from kestra_ops.errors import NotFound


def _json(kube, what: str, fn: Callable[..., Any], *args, **kwargs) -> dict:
    response = kube.call(what, fn, *args, _preload_content=False, **kwargs)
    return json.loads(response.data or b"{}")


def read_configmap(kube, namespace: str, name: str) -> dict:
    return _json(kube, f"configmap {name}", kube.core.read_namespaced_config_map, name,
                 namespace)


def replace_configmap(kube, namespace: str, name: str, body: dict) -> dict:
    """Replace with ``body`` (whose metadata carries the resourceVersion that was read)."""
    return _json(kube, f"configmap {name}", kube.core.replace_namespaced_config_map, name,
                 namespace, body)


def read_deployment(kube, namespace: str, name: str) -> dict:
    return _json(kube, f"deployment {name}", kube.apps.read_namespaced_deployment, name,
                 namespace)


def read_secret(kube, namespace: str, name: str) -> dict | None:
    """The Secret as JSON (its data base64-encoded, as the API has it); None when absent."""
    try:
        return _json(kube, f"secret {name}", kube.core.read_namespaced_secret, name, namespace)
    except NotFound:
        return None


def create_secret(kube, namespace: str, body: dict, *, field_manager: str | None = None) -> dict:
    """Create; ``field_manager`` (default: kestra-ops, see Kube.call) names the writer."""
    name = (body.get("metadata") or {}).get("name", "?")
    extra = {"field_manager": field_manager} if field_manager else {}
    return _json(kube, f"secret {name}", kube.core.create_namespaced_secret, namespace, body,
                 **extra)


def replace_secret(kube, namespace: str, name: str, body: dict) -> dict:
    """Replace with ``body`` (whose metadata carries the resourceVersion that was read)."""
    return _json(kube, f"secret {name}", kube.core.replace_namespaced_secret, name, namespace,
                 body)


def decode(encoded: str | None) -> bytes | None:
    """One value of a Secret's ``data``: None when absent, b"" when not base64 (unreadable: it
    differs from anything kestra-ops would write)."""
    if encoded is None:
        return None
    try:
        return base64.b64decode(encoded)
    except (binascii.Error, ValueError):
        return b""


def encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
