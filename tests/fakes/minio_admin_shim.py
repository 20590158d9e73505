"""A thin test-only MinIO front for moto: health endpoints and the few admin calls kestra-ops uses.

    with MinioAdminShim(access_key, secret_key) as minio:   # 127.0.0.1, ephemeral port
        minio.endpoint          # "127.0.0.1:PORT": S3 goes to moto's (in-process) backend
        minio.policies          # name -> policy dict (add-canned-policy)
        minio.service_accounts  # access key -> {"secretKey", "policy", "name", ...}
        minio.live = 503        # /minio/health/live answers 503
        minio.admin_error = (501, "NotImplemented")   # every admin call answers that error
        minio.admin_error = (400, "NotImplemented", "xml")   # ... as an S3 XML error

S3 requests are passed to moto's WSGI application in this process, so buckets are shared with the
``s3`` fixture's server (and emptied by its reset). Admin requests must be signed with the root
access key (only the key id in the Authorization header is checked, not the signature). As MinIO
does, the service-account bodies are encrypted with the root secret key (``minio.crypto``);
canned-policy bodies are plain JSON.
"""

from __future__ import annotations

import io
import json
import re
import threading
from urllib.parse import parse_qs

from tests.fakes.loopback import LoopbackServer

_CREDENTIAL = re.compile(r"Credential=([^/]+)/")
_STATUS_TEXT = {200: "OK", 204: "No Content", 400: "Bad Request", 403: "Forbidden",
                404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
                500: "Internal Server Error", 501: "Not Implemented",
                503: "Service Unavailable"}


class _Body(io.BytesIO):
    """What minio.crypto.decrypt reads from: an urllib3 response's read/close/release_conn."""

    def release_conn(self) -> None:
        pass


class MinioAdminShim(LoopbackServer):
    def __init__(self, access_key: str, secret_key: str, *, live: int = 200, ready: int = 200,
                 cluster: int = 200):
        self.access_key, self.secret_key = access_key, secret_key
        self.live, self.ready, self.cluster = live, ready, cluster
        self.policies: dict[str, dict] = {}
        self.service_accounts: dict[str, dict] = {}
        self.requests: list[str] = []  # "METHOD /path" of every health/admin request
        # (status, code[, "xml"]): every admin call answers this error (MinIO's JSON, or XML)
        self.admin_error: tuple | None = None
        self._backend = None
        self._server = None

    # ------------------------------------------------------------------ WSGI

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/minio/"):
            self.requests.append(f"{environ['REQUEST_METHOD']} {path}")
        if path.startswith("/minio/health/"):
            status = {"/minio/health/live": self.live, "/minio/health/ready": self.ready,
                      "/minio/health/cluster": self.cluster}.get(path, 404)
            return self._reply(start_response, status, b"")
        if path.startswith("/minio/admin/v3/"):
            return self._admin(environ, start_response, path[len("/minio/admin/v3/"):])
        return self._backend(environ, start_response)

    def _reply(self, start_response, status: int, body: bytes,
               content_type: str = "application/json"):
        start_response(f"{status} {_STATUS_TEXT.get(status, 'Status')}",
                       [("Content-Type", content_type), ("Content-Length", str(len(body))),
                        ("Server", "MinIO")])
        return [body]

    def _error(self, start_response, status: int, code: str, message: str):
        body = json.dumps({"Code": code, "Message": message}).encode()
        return self._reply(start_response, status, body)

    def _admin(self, environ, start_response, command: str):
        from minio.crypto import decrypt, encrypt

        if self.admin_error is not None:
            status, code, *form = self.admin_error
            if form == ["xml"]:
                body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                        f"<Message>{code}</Message></Error>").encode()
                return self._reply(start_response, status, body, "application/xml")
            return self._error(start_response, status, code, f"{code} (shim)")

        found = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        if not found or found.group(1) != self.access_key:
            return self._error(start_response, 403, "AccessDenied", "not the root credentials")
        method = environ["REQUEST_METHOD"]
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""

        if (method, command) == ("GET", "list-canned-policies"):
            return self._reply(start_response, 200, json.dumps(self.policies).encode())
        if (method, command) == ("PUT", "add-canned-policy"):
            self.policies[query["name"]] = json.loads(body)
            return self._reply(start_response, 200, b"")
        if (method, command) == ("GET", "info-canned-policy"):
            if query.get("name") not in self.policies:
                return self._error(start_response, 404, "XMinioAdminNoSuchPolicy", "no policy")
            return self._reply(start_response, 200,
                               json.dumps(self.policies[query["name"]]).encode())
        if (method, command) == ("PUT", "add-service-account"):
            data = json.loads(decrypt(_Body(body), self.secret_key))
            key = data.get("accessKey")
            if not key or not data.get("secretKey"):
                return self._error(start_response, 400, "XMinioAdminInvalidArgument",
                                   "this shim needs an explicit access and secret key")
            if key in self.service_accounts:
                return self._error(start_response, 409, "XMinioAdminServiceAccountExists",
                                   "service account exists")
            self.service_accounts[key] = {**data, "parentUser": self.access_key}
            answer = {"credentials": {"accessKey": key, "secretKey": data["secretKey"],
                                      "expiration": "1970-01-01T00:00:00Z"}}
            return self._reply(start_response, 200,
                               encrypt(json.dumps(answer).encode(), self.secret_key),
                               "application/octet-stream")
        if (method, command) == ("GET", "info-service-account"):
            account = self.service_accounts.get(query.get("accessKey"))
            if account is None:
                return self._error(start_response, 404, "XMinioAdminServiceAccountNotFound",
                                   "no such service account")
            info = {"parentUser": account["parentUser"], "accountStatus": account["status"],
                    "impliedPolicy": "policy" not in account, "name": account.get("name", ""),
                    "description": account.get("description", ""),
                    "policy": json.dumps(account.get("policy"))}
            return self._reply(start_response, 200,
                               encrypt(json.dumps(info).encode(), self.secret_key),
                               "application/octet-stream")
        if (method, command) == ("DELETE", "delete-service-account"):
            self.service_accounts.pop(query.get("accessKey"), None)
            return self._reply(start_response, 204, b"")
        return self._error(start_response, 404, "XMinioAdminNotImplemented",
                           f"{method} {command} is not in this shim")

    # ------------------------------------------------------------------ server

    def start(self) -> "MinioAdminShim":
        from moto.moto_server.werkzeug_app import (DomainDispatcherApplication,
                                                   MotoRequestHandler, create_backend_app)
        from werkzeug.serving import make_server

        self._backend = DomainDispatcherApplication(create_backend_app)
        self._server = make_server("127.0.0.1", 0, self, threaded=True,
                                   request_handler=MotoRequestHandler)
        threading.Thread(target=self._server.serve_forever, daemon=True,
                         name="minio-admin-shim").start()
        return self
