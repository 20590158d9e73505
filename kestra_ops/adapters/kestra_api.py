"""Kestra's REST API (1.x, OSS tenant ``main``): :class:`KestraClient`, one method per call.

Methods return plain dicts, lists or bytes. Idempotent calls (GET, PUT, DELETE and the read-only
``POST flows/validate``) are retried on connection errors and 5xx; creating flows or executions,
import and namespace sync never are (see kestra_http for the transport and the typed errors).
Namespace sync always sends ``delete`` explicitly: the server defaults to deleting.
:func:`kestra_ops.wiring.client_for_env` builds the client of an environment (URL, credentials,
Kubernetes service proxy). One client per thread: a requests Session is not thread-safe.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Iterable, Iterator, Mapping
from urllib.parse import quote

from kestra_ops.adapters.kestra_http import (PASSWORD_VAR, URL_VAR, USERNAME_VAR, KestraHTTP,
                                             KestraValidationError)
from kestra_ops.errors import InvalidInput, OperationFailed

__all__ = ["KestraClient", "KestraValidationError", "TERMINAL_STATES", "USERNAME_VAR",
           "PASSWORD_VAR", "URL_VAR"]

TERMINAL_STATES = frozenset({"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED",
                             "SKIPPED"})
YAML = {"Content-Type": "application/x-yaml"}
SMALL_ANSWER = 1024 * 1024  # the (empty) answer of a write, read with this cap
MAX_FILES = 100_000  # namespace files + directories listed for one namespace, at most


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

    def count_executions(self, namespace: str | None = None, *, state: str | None = None) -> int:
        """How many executions (of ``namespace`` and its children; in ``state``): the ``total``
        of one search page, so one call whatever the count."""
        params: dict[str, Any] = {"page": 1, "size": 1}
        if namespace:
            params["filters[namespace][PREFIX]"] = namespace
        if state:
            params["filters[state][EQUALS]"] = state
        body = self._json("GET", "executions/search", params=params) or {}
        total = body.get("total") if isinstance(body, dict) else None
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise OperationFailed("GET executions/search: Kestra's answer has no execution count")
        return total

    def count_flows(self) -> int:
        """How many flows: the ``total`` of one ``flows/search`` page (searchFlows answers
        PagedResults_Flow_, ../shared/kestra-openapi.yml)."""
        return self._total("flows/search")

    def count_triggers(self) -> int:
        """How many triggers Kestra keeps (their state: next dates, locks): the ``total`` of one
        ``GET triggers/search`` page. Not in the OpenAPI excerpt we test against; Kestra
        documents it (kestra-io/client-sdk java-sdk/docs/TriggersApi.md, searchTriggers: page,
        size, sort, filters -> PagedResultsTriggerControllerTriggers). :class:`NotFound` from a
        server without it."""
        return self._total("triggers/search")

    def _total(self, path: str) -> int:
        body = self._json("GET", path, params={"page": 1, "size": 1}) or {}
        total = body.get("total") if isinstance(body, dict) else None
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise OperationFailed(f"GET {path}: Kestra's answer has no total")
        return total

    # ------------------------------------------------------------------ namespaces
    def namespaces(self) -> list[str]:
        """The namespaces that have flows (``GET flows/distinct-namespaces``: Kestra OSS lists
        namespaces through their flows; one holding only KV entries or files is not in it)."""
        return sorted(str(n) for n in _list(self._json("GET", "flows/distinct-namespaces"),
                                            "GET flows/distinct-namespaces"))

    # ------------------------------------------------------------------ KV store
    def kv_keys(self, namespace: str) -> list[str]:
        """The keys of ``namespace``'s KV store (not of its parents or children)."""
        call = f"GET namespaces/{namespace}/kv"
        entries = _list(self._json("GET", f"namespaces/{_q(namespace)}/kv"), call)
        if not all(isinstance(e, dict) and isinstance(e.get("key"), str) for e in entries):
            raise OperationFailed(f"{call}: Kestra listed an entry without a key")
        return sorted(e["key"] for e in entries)

    def get_kv(self, namespace: str, key: str) -> Any:
        """The value of ``key`` (any JSON value); NotFound when there is none."""
        body = self._json("GET", f"namespaces/{_q(namespace)}/kv/{_q(key)}")
        if not isinstance(body, dict) or "value" not in body:
            raise OperationFailed(f"GET namespaces/{namespace}/kv/{key}: Kestra's answer has no value")
        return body["value"]

    def put_kv(self, namespace: str, key: str, value: Any) -> None:
        """Store ``value`` (any JSON value) under ``key``; Kestra keeps it as a new version."""
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise InvalidInput(f"KV {namespace}/{key}: the value is not JSON: {err}") from None
        self._answer("PUT", f"namespaces/{_q(namespace)}/kv/{_q(key)}", data=text.encode(),
                     headers={"Content-Type": "text/plain"}, limit=SMALL_ANSWER)

    def delete_kv(self, namespace: str, key: str) -> bool:
        """Delete ``key``; False when there was none."""
        return bool(self._json("DELETE", f"namespaces/{_q(namespace)}/kv/{_q(key)}"))

    # ------------------------------------------------------------------ namespace files
    def namespace_files(self, namespace: str, *, limit: int = MAX_FILES) -> list[str]:
        """Every namespace file of ``namespace`` (paths like ``/dir/file.sql``), walking
        ``files/directory`` level by level; more than ``limit`` entries: OperationFailed."""
        files, pending, seen, entries = [], ["/"], set(), 0
        while pending:
            directory = pending.pop()
            if directory in seen:
                continue
            seen.add(directory)
            params = {"path": directory} if directory != "/" else None
            for item in _list(self._json("GET", f"namespaces/{_q(namespace)}/files/directory",
                                         params=params), f"GET namespaces/{namespace}/files/directory"):
                entries += 1
                if entries > limit:
                    raise OperationFailed(f"namespace {namespace}: more than {limit:,} namespace "
                                          "files and directories; not listed")
                name = item.get("fileName") if isinstance(item, dict) else None
                if not isinstance(name, str) or name in ("", ".", "..") or "/" in name:
                    raise OperationFailed(f"GET namespaces/{namespace}/files/directory: Kestra "
                                          f"listed an entry with an unusable name {name!r}")
                path = directory.rstrip("/") + "/" + name
                if item.get("type") == "Directory":
                    pending.append(path)
                else:
                    files.append(path)
        return sorted(files)

    def get_namespace_file(self, namespace: str, path: str) -> bytes:
        """The content of namespace file ``path``; NotFound when there is none."""
        return self._content("GET", f"namespaces/{_q(namespace)}/files",
                             params={"path": _ns_path(path)})

    def put_namespace_file(self, namespace: str, path: str, data: bytes) -> None:
        """Store ``data`` as namespace file ``path`` (a new version when it exists). The upload's
        file name is fixed: Kestra unzips an upload whose file name ends in ``.zip``. Retried on
        5xx like an idempotent call: storing the same bytes again only adds a version."""
        self._answer("POST", f"namespaces/{_q(namespace)}/files", params={"path": _ns_path(path)},
                     files={"fileContent": ("content", bytes(data), "application/octet-stream")},
                     idempotent=True, limit=SMALL_ANSWER)


def _list(body: Any, call: str) -> list:
    """A list answer (none: empty); anything else is Kestra's error, not an empty list."""
    if body is None:
        return []
    if not isinstance(body, list):
        raise OperationFailed(f"{call}: expected a list from Kestra, got {type(body).__name__}")
    return body


def _ns_path(path: str) -> str:
    """A namespace file path as Kestra takes it: absolute, no ``..`` segment."""
    clean = "/" + str(path).lstrip("/")
    if clean == "/" or ".." in clean.split("/"):
        raise InvalidInput(f"namespace file path {path!r}: expected a file path like /dir/file.txt")
    return clean


def _q(segment: str) -> str:
    return quote(str(segment), safe="")


def _b(value: bool) -> str:
    return "true" if value else "false"
