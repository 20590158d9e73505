"""Kestra's REST API (1.x, OSS tenant ``main``): :class:`KestraClient`, one method per call.

Methods return plain dicts, lists or bytes. Idempotent calls (GET, PUT, DELETE and the read-only
``POST flows/validate``) are retried on connection errors and 5xx; creating flows or executions,
import, namespace sync and bulk update never are (see kestra_http for the transport and the
typed errors). Namespace sync and bulk update always send ``delete`` explicitly: the server
defaults to deleting. :func:`kestra_ops.wiring.client_for_env` builds the client of an
environment (URL, credentials, Kubernetes service proxy). One client per thread: a requests
Session is not thread-safe.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Iterable, Iterator, Mapping
from urllib.parse import quote

from kestra_ops.adapters.kestra_http import (PASSWORD_VAR, URL_VAR, USERNAME_VAR, KestraHTTP,
                                             KestraValidationError, _body, iter_sse)
from kestra_ops.errors import InvalidInput, OperationFailed, Unreachable

__all__ = ["KestraClient", "KestraValidationError", "ExecutionTimeout", "iter_sse", "TERMINAL_STATES", "USERNAME_VAR", "PASSWORD_VAR", "URL_VAR"]

TERMINAL_STATES = frozenset({"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED",
                             "SKIPPED"})
YAML = {"Content-Type": "application/x-yaml"}


class ExecutionTimeout(OperationFailed):
    """An execution did not reach a final state in time; ``execution`` is the last one seen."""

    def __init__(self, message: str, execution: dict | None = None, **kw):
        super().__init__(message, **kw)
        self.execution = execution


class KestraClient(KestraHTTP):
    """Kestra's calls; construction and transport options: :class:`KestraHTTP`."""

    # ------------------------------------------------------------------ server
    def configs(self) -> dict:
        """``GET /api/v1/configs`` (no auth): ``version``, ``isBasicAuthInitialized``, ..."""
        return self._json("GET", "configs", tenant=False)

    def basic_auth_validation_errors(self) -> list[str]:
        """Kestra's complaints about its configured basic-auth credentials (empty when fine)."""
        return list(self._json("GET", "basicAuthValidationErrors", tenant=False) or [])

    def health(self, management_url: str | None = None) -> dict:
        """``/health`` of the management port (8081, no auth); a DOWN answer (503) is returned."""
        base = (management_url or self.management_url or "").rstrip("/")
        if not base:
            raise InvalidInput("no management URL for Kestra's /health (port 8081)")
        resp = self._request("GET", "health", base=base, accept=(503,))
        return _body(resp) or {"status": "UP" if resp.status_code == 200 else "DOWN"}

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
        return self._request("GET", "flows/export/by-query", params=params).content

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

    def bulk_update(self, multi_doc_yaml: str, *, namespace: str | None, delete: bool,
                    allow_namespace_child: bool = False) -> list[dict]:
        """Create/update many flows. ``delete`` is always sent (the server deletes by default);
        ``delete=True`` without a namespace (= every flow of the tenant not in the batch) is
        refused."""
        if delete and not namespace:
            raise InvalidInput("bulk update with delete=true needs a namespace: without one Kestra "
                               "deletes every flow of the tenant that is not in the batch")
        params = {"delete": _b(delete), "allowNamespaceChild": _b(allow_namespace_child),
                  **({"namespace": namespace} if namespace else {})}
        return self._json("POST", "flows/bulk", data=multi_doc_yaml.encode(), headers=YAML,
                          params=params)

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

    def delete_execution(self, execution_id: str) -> None:
        self._request("DELETE", f"executions/{_q(execution_id)}")

    def kill_execution(self, execution_id: str) -> None:
        self._request("DELETE", f"executions/{_q(execution_id)}/kill")

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

    def follow_execution(self, execution_id: str, *, timeout: float) -> Iterator[dict]:
        """Executions from the SSE ``/follow`` stream until the final one (then it stops);
        ExecutionTimeout when ``timeout`` passes first. A dropped stream is reopened."""
        import requests

        deadline, last = time.monotonic() + timeout, None
        path = f"executions/{_q(execution_id)}/follow"
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                resp = self._request("GET", path, stream=True, headers={
                    "Accept": "text/event-stream"}, timeout=(self.timeout[0], remaining))
                with resp:
                    for _, data, event_id in iter_sse(resp.iter_content(chunk_size=None)):
                        doc = _loads(data)
                        if event_id == "start" or not isinstance(doc, dict) or "state" not in doc:
                            continue
                        last = doc
                        yield doc
                        if event_id == "end" or _state(doc) in TERMINAL_STATES:
                            return
                        if time.monotonic() >= deadline:
                            break
            except Unreachable:
                if time.monotonic() < deadline:
                    raise
            except requests.exceptions.RequestException:
                pass  # stream cut mid-way: look at the execution, then reopen
            if time.monotonic() >= deadline:
                break
            last = self.get_execution(execution_id)  # NotFound when it does not exist
            if _state(last) in TERMINAL_STATES:
                yield last
                return
            time.sleep(min(0.2, max(deadline - time.monotonic(), 0)))  # then reopen the stream
        raise ExecutionTimeout(f"execution {execution_id} not finished after {timeout:g}s "
                               f"(last state {_state(last) or 'unknown'})", execution=last)

    def wait_for_execution(self, execution_id: str, *, timeout: float,
                           poll: float = 0.2) -> dict:
        """Poll until the execution reaches a final state; ExecutionTimeout otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            execution = self.get_execution(execution_id)
            if _state(execution) in TERMINAL_STATES:
                return execution
            if time.monotonic() + poll > deadline:
                raise ExecutionTimeout(f"execution {execution_id} not finished after "
                                       f"{timeout:g}s (state {_state(execution)})",
                                       execution=execution)
            time.sleep(poll)


def _q(segment: str) -> str:
    return quote(str(segment), safe="")


def _b(value: bool) -> str:
    return "true" if value else "false"


def _state(execution: dict | None) -> str | None:
    return ((execution or {}).get("state") or {}).get("current")


def _loads(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except ValueError:
        return None

