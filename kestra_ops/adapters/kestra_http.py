"""How kestra-ops talks HTTP to Kestra: the transport under ``kestra_api.KestraClient``.

Credentials go as ``Authorization: Basic`` (``auth_mode="header"``) or as Kestra's ``BASIC_AUTH``
cookie (``"cookie"``, for the Kubernetes service proxy, which removes ``Authorization``).
:meth:`KestraHTTP._request` applies connect+read timeouts and retries with exponential backoff
(and ``Retry-After``) on connection errors and 5xx, for idempotent calls only; a read timeout is
not retried. Errors are one-line typed errors naming the call ("GET flows/search"), never a
credential: 401/403 -> PermissionDenied, 404 -> NotFound, 409 -> Conflict, 422 ->
KestraValidationError (Kestra's error list in ``.errors``), no connection or timeout ->
Unreachable, anything else -> OperationFailed; an error from the Kubernetes API server (a
``Status`` body) says so.
"""

from __future__ import annotations

import base64
import time
from typing import Any, Iterator, Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

from kestra_ops.errors import (EXIT_USAGE, Conflict, InvalidInput, KestraOpsError, NotFound,
                               OperationFailed, PermissionDenied, Unreachable)
from kestra_ops.redact import mask_text

USERNAME_VAR = "KESTRA_OPS_BASIC_AUTH_USERNAME"
PASSWORD_VAR = "KESTRA_OPS_BASIC_AUTH_PASSWORD"
URL_VAR = "KESTRA_OPS_KESTRA_URL"
_CRED_HINT = f"check {USERNAME_VAR} / {PASSWORD_VAR} or the environment's basic-auth Secret"
# Kestra's answers are read with a cap (a broken or hostile server may send without end): a
# flows export of the largest target kestra-ops reads (64 MB of flows) fits compressed or not
MAX_BODY = 256 * 1024 * 1024
MAX_ERROR_BODY = 1024 * 1024  # an error's body: only its message is shown


class KestraValidationError(OperationFailed):
    """Kestra refused the input (422); ``errors`` holds its constraint messages."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, errors: list[str] | None = None, **kw):
        super().__init__(message, **kw)
        self.errors = list(errors or [])


class KestraHTTP:
    """Session, auth, timeouts, retries and typed errors (see the module doc)."""

    def __init__(self, base_url: str, username: str | None = None, password: str | None = None,
                 *, tenant: str = "main", verify: bool | str = True,
                 timeout: float | tuple[float, float] = 10.0, retries: int = 3,
                 backoff: float = 0.2, session=None, headers: Mapping[str, str] | None = None,
                 auth_mode: str = "header", management_url: str | None = None):
        import requests

        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(f"Kestra URL {_safe_url(base_url)!r}: expected "
                               "http(s)://host[:port][/path]")
        if parts.username and username is None:  # https://user:pass@host: use, then forget
            username, password = unquote(parts.username), unquote(parts.password or "")
        netloc = parts.netloc.rpartition("@")[2]  # without user:password
        self.url = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self.api = f"{self.url}/api/v1"
        self.tenant = tenant
        self.username, self._password = username, password
        self.verify, self.retries, self.backoff = verify, max(0, retries), backoff
        self.timeout = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        self.management_url = management_url.rstrip("/") if management_url else None
        self.warnings: list[str] = []
        self.credentials_source: str | None = "arguments" if password is not None else None
        self.no_credentials_reason = ""
        self.route = "direct"
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = "kestra-ops"
        self.session.headers.update(headers or {})
        if username is not None and password is not None:
            if auth_mode == "cookie":
                token = base64.b64encode(f"{username}:{password}".encode()).decode()
                self.session.headers["Cookie"] = f"BASIC_AUTH={token}"
            else:
                self.session.auth = (username, password)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, username={self.username!r}, tenant={self.tenant!r})"

    def __enter__(self) -> "KestraHTTP":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    # ------------------------------------------------------------------ plumbing
    def _request(self, method: str, path: str, *, tenant: bool = True, params=None, data=None,
                 files=None, json=None, headers=None, idempotent: bool | None = None,
                 stream: bool = False, timeout=None, base: str | None = None,
                 accept: tuple[int, ...] = ()):
        import requests

        call = f"{method} {path}"
        url = f"{base}/{path}" if base else f"{self.api}/{self.tenant}/{path}" if tenant \
            else f"{self.api}/{path}"
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "PUT", "DELETE")
        attempts = 1 + (self.retries if idempotent else 0)
        timeout = timeout or self.timeout
        for attempt in range(1, attempts + 1):
            try:
                resp = self.session.request(method, url, params=params, data=data, files=files,
                                            json=json, headers=headers, timeout=timeout,
                                            verify=self.verify, stream=stream)
            except requests.exceptions.SSLError as err:
                raise self._error(Unreachable, f"{call}: cannot talk to Kestra at {self.url}: "
                                  f"{_root(err)} (pass the cluster CA, or --insecure to skip "
                                  "verification)") from None
            except requests.exceptions.ReadTimeout:
                raise self._error(Unreachable, f"{call}: Kestra at {self.url} did not answer "
                                  f"within {timeout[1]:g}s") from None
            except requests.exceptions.ConnectionError as err:
                what = "timed out connecting" if isinstance(
                    err, requests.exceptions.ConnectTimeout) else _root(err)
                if attempt == attempts:
                    tries = f" ({attempts} attempts)" if attempts > 1 else ""
                    raise self._error(Unreachable, f"{call}: cannot reach Kestra at {self.url}: "
                                      f"{what}{tries}") from None
                time.sleep(self._delay(attempt, None))
                continue
            if resp.status_code in accept:
                return resp
            if resp.status_code >= 500 and attempt < attempts:
                delay = self._delay(attempt, resp.headers.get("Retry-After"))
                resp.close()
                time.sleep(delay)
                continue
            if resp.status_code >= 400:
                raise self._status_error(call, resp, attempt)
            return resp
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = min(self.backoff * 2 ** (attempt - 1), 10.0)
        if retry_after and retry_after.strip().isdigit():
            delay = max(delay, min(float(retry_after), 10.0))
        return delay

    def _error(self, cls, message: str, **kw) -> KestraOpsError:
        secret = self._password if self._password and len(self._password) >= 4 else ""
        return cls(mask_text(message, [secret]), **kw)

    def _status_error(self, call: str, resp, attempts: int) -> KestraOpsError:
        status, body = resp.status_code, _body(resp)
        text = body.get("message") if isinstance(body, dict) else None
        message = (str(text or resp.reason or "").splitlines() or [""])[0][:300]
        if isinstance(body, dict) and body.get("kind") == "Status":  # the API server, not Kestra
            return self._error(PermissionDenied if status in (401, 403) else OperationFailed,
                               f"{call}: the Kubernetes API server's service proxy answered "
                               f"{status}: {message}")
        if status in (401, 403):
            who = f" for user {self.username}" if self.username else ""
            why = f"no credentials were sent ({self.no_credentials_reason or 'none configured'})" \
                if self._password is None else f"Kestra refused the credentials{who}"
            err = self._error(PermissionDenied, f"{call}: {status} "
                              f"{'Unauthorized' if status == 401 else 'Forbidden'}: {why}; "
                              f"{_CRED_HINT}")
            err.credentials = True  # Kestra itself refused them (not the API server's proxy)
            return err
        if status == 404:
            return self._error(NotFound, f"{call}: not found (404): {message}")
        if status == 409:
            return self._error(Conflict, f"{call}: conflict (409): {message}")
        if status == 422:
            embedded = (body.get("_embedded") or {}).get("errors", []) if isinstance(body, dict) \
                else []
            errors = [f"{e['path']}: {e.get('message')}" if e.get("path") else str(e.get("message"))
                      for e in embedded if isinstance(e, dict)]
            return self._error(KestraValidationError, f"{call}: Kestra refused it (422): {message}",
                               errors=errors or ([message] if message else []))
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return self._error(OperationFailed, f"{call}: Kestra answered {status}{tries}: {message}")

    def _answer(self, method: str, path: str, *, limit: int | None = None, **kwargs):
        """(response, body) of a successful answer, the body read with a cap of ``limit``
        bytes (more: an :class:`OperationFailed` naming the call; the rest is never read)."""
        limit = MAX_BODY if limit is None else limit
        resp = self._request(method, path, stream=True, **kwargs)
        try:
            raw = _read(resp, limit)
        finally:
            resp.close()
        if raw is None:
            raise OperationFailed(f"{method} {path}: Kestra's answer is larger than "
                                  f"{limit:,} bytes; it was not read")
        return resp, raw

    def _content(self, method: str, path: str, **kwargs) -> bytes:
        return self._answer(method, path, **kwargs)[1]

    def _json(self, method: str, path: str, **kwargs) -> Any:
        import json

        resp, raw = self._answer(method, path, **kwargs)
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise OperationFailed(f"{method} {path}: answered {resp.status_code} with a "
                                  f"non-JSON body ({resp.headers.get('Content-Type')}): is "
                                  f"{self.url} Kestra's URL?") from None

    def _pages(self, path: str, params: dict, page_size: int) -> Iterator[dict]:
        page, seen = 1, 0
        while True:
            body = self._json("GET", path, params={**params, "page": page, "size": page_size})
            results = (body or {}).get("results") or []
            yield from results
            seen += len(results)
            if not results or seen >= int(body.get("total") or 0):
                return
            page += 1


def _read(resp, limit: int) -> bytes | None:
    """At most ``limit`` bytes of ``resp``'s body; None when it is longer."""
    chunks, size = [], 0
    for chunk in resp.iter_content(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _body(resp) -> Any:
    """An error answer's JSON (its first :data:`MAX_ERROR_BODY` bytes), or None."""
    import json

    try:
        raw = _read(resp, MAX_ERROR_BODY)
        return json.loads(raw) if raw else None
    except Exception:  # noqa: BLE001 - not JSON, cut short, or the connection went: no message
        return None


def _root(err: BaseException) -> str:
    """The cause of a requests/urllib3 error, in a few words (no URL, no credentials)."""
    from kestra_ops.adapters.neterr import describe

    return describe(err)


def _safe_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit((parts.scheme, parts.hostname or "", parts.path, parts.query, ""))
