"""Kestra's REST API (1.x, OSS tenant ``main``): :class:`KestraClient`, one method per call.

Methods return plain dicts, lists or bytes. Idempotent calls (GET, PUT, DELETE and the read-only
``POST flows/validate``) are retried on connection errors and 5xx; creating flows or executions,
import and namespace sync never are (see kestra_http for the transport and the typed errors).
Namespace sync always sends ``delete`` explicitly: the server defaults to deleting.
:func:`kestra_ops.wiring.client_for_env` builds the client of an environment (URL, credentials,
Kubernetes service proxy). One client per thread: a requests Session is not thread-safe.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Iterator, Mapping
from urllib.parse import quote

from kestra_ops.adapters.kestra_http import (PASSWORD_VAR, URL_VAR, USERNAME_VAR, KestraHTTP,
                                             KestraValidationError)

__all__ = ["KestraClient", "KestraValidationError", "TERMINAL_STATES", "USERNAME_VAR",
           "PASSWORD_VAR", "URL_VAR"]

TERMINAL_STATES = frozenset({"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED",
                             "SKIPPED"})
YAML = {"Content-Type": "application/x-yaml"}


class KestraClient(KestraHTTP):
    """Kestra's calls; construction and transport options: :class:`KestraHTTP`."""

    TERMINAL_STATES = TERMINAL_STATES  # an execution in one of these has ended

    # ------------------------------------------------------------------ server
    def configs(self) -> dict:
        """``GET /api/v1/configs`` (no auth): ``version``, ``isBasicAuthInitialized``, ..."""
        return self._json("GET", "configs", tenant=False)

    def basic_auth_validation_errors(self) -> list[str]:
        """Kestra's complaints about its configured basic-auth credentials (empty when fine)."""
        return list(self._json("GET", "basicAuthValidationErrors", tenant=False) or [])

    # ------------------------------------------------------------------ flows
    def search_flows(self, namespace: str | None = None, *, page_size: int = 100,
                     prefix: bool = True) -> Iterator[dict]:
        """Every flow (of ``namespace``, and of its children with ``prefix``), page by page."""
        params: dict[str, Any] = {"sort": ["namespace:asc", "id:asc"]}
        if namespace:
            params[f"filters[namespace][{'PREFIX' if prefix else 'EQUALS'}]"] = namespace
        seen = set()
        for flow in self._pages("flows/search", params, page_size):
            key = (flow.get("namespace"), flow.get("id"))
            if key not in seen:
                seen.add(key)
                yield flow

    def get_flow(self, namespace: str, flow_id: str, source: bool = True, *,
                 revision: int | None = None) -> dict:
        params = {"source": _b(source), **({"revision": revision} if revision else {})}
        return self._json("GET", f"flows/{_q(namespace)}/{_q(flow_id)}", params=params)

    def create_flow(self, yaml_text: str) -> dict:
        return self._json("POST", "flows", data=yaml_text.encode(), headers=YAML)

    def update_flow(self, namespace: str, flow_id: str, yaml_text: str) -> dict:
        return self._json("PUT", f"flows/{_q(namespace)}/{_q(flow_id)}",
                          data=yaml_text.encode(), headers=YAML)

    def delete_flow(self, namespace: str, flow_id: str) -> None:
        self._request("DELETE", f"flows/{_q(namespace)}/{_q(flow_id)}")

    def validate_flows(self, multi_doc_yaml: str) -> list[dict]:
        """One result per document; a flow is valid when its ``constraints`` is empty."""
        return self._json("POST", "flows/validate", data=multi_doc_yaml.encode(), headers=YAML,
                          idempotent=True) or []

    def export_flows(self, namespace: str | None = None) -> bytes:
        """A ZIP of the flow sources (of ``namespace`` and its children, or all)."""
        params = {"filters[namespace][PREFIX]": namespace} if namespace else None
        return self._content("GET", "flows/export/by-query", params=params)

    def import_flows(self, data: bytes, filename: str = "flows.zip", *,
                     fail_on_error: bool = False) -> list[str]:
        """Import a ZIP or multi-document YAML; returns the names of flows NOT imported."""
        return list(self._json("POST", "flows/import", params={"failOnError": _b(fail_on_error)},
                               files={"fileUpload": (filename, data)}) or [])

    def update_namespace(self, namespace: str, multi_doc_yaml: str, *, delete: bool,
                         override: bool = False) -> list[dict]:
        """Sync a namespace. ``delete`` is always sent: the server deletes by default."""
        return self._json("POST", f"flows/{_q(namespace)}", data=multi_doc_yaml.encode(),
                          headers=YAML, params={"delete": _b(delete), "override": _b(override)})

    # ------------------------------------------------------------------ executions
    def create_execution(self, namespace: str, flow_id: str, *, inputs: Mapping | None = None,
                         labels: Mapping[str, str] | None = None,
                         schedule_date: datetime | str | None = None) -> dict:
        params: dict[str, Any] = {"wait": "false"}
        if labels:
            params["labels"] = [f"{k}:{v}" for k, v in labels.items()]
        if schedule_date is not None:
            params["scheduleDate"] = schedule_date.isoformat() if isinstance(
                schedule_date, datetime) else str(schedule_date)
        files = None
        if inputs:
            files = {k: (k, v) if isinstance(v, (bytes, bytearray)) else
                     (None, _b(v) if isinstance(v, bool) else str(v)) for k, v in inputs.items()}
        return self._json("POST", f"executions/{_q(namespace)}/{_q(flow_id)}", params=params,
                          files=files)

    def get_execution(self, execution_id: str) -> dict:
        return self._json("GET", f"executions/{_q(execution_id)}")

    def search_executions(self, state: str | Iterable[str] | None = None,
                          namespace: str | None = None, flow_id: str | None = None, *,
                          page_size: int = 100) -> Iterator[dict]:
        """Executions, newest first; ``state`` one state or several (IN)."""
        params: dict[str, Any] = {"sort": ["state.startDate:desc"]}
        if isinstance(state, str):
            params["filters[state][EQUALS]"] = state
        elif state:
            params["filters[state][IN]"] = ",".join(state)
        if namespace:
            params["filters[namespace][PREFIX]"] = namespace
        if flow_id:
            params["filters[flowId][EQUALS]"] = flow_id
        return self._pages("executions/search", params, page_size)


def _q(segment: str) -> str:
    return quote(str(segment), safe="")


def _b(value: bool) -> str:
    return "true" if value else "false"
