"""MinIO's admin API (policies, service accounts), signed with MinIO's root credentials.

The admin API is optional: a store without it (another S3 server) may take
``/minio/admin/v3/...`` for a bucket named ``minio``. :meth:`Admin.available` therefore starts
with a read-only GET (list policies), and an answer meaning "not here" (HTTP 404, 405 or 501; a
4xx carrying an S3 code such as NotImplemented or NoSuchBucket; a 200 that is not a JSON object)
says so instead of failing. Any other error is one line naming the endpoint, never the answer's
body nor a credential: 401/403 PermissionDenied, 404 NotFound, other answers OperationFailed,
no answer Unreachable.
"""

from __future__ import annotations

import json

from kestra_ops.errors import NotFound, OperationFailed, PermissionDenied, Unreachable

ABSENT_STATUS = frozenset({404, 405, 501})
# S3 / MinIO error codes that mean "no such API here", whatever the 4xx status
ABSENT_CODES = frozenset({"NotImplemented", "XMinioNotImplemented", "XMinioAdminNotImplemented",
                          "MethodNotAllowed", "UnsupportedOperation", "NoSuchBucket",
                          "NoSuchKey", "InvalidBucketName"})


def answer_kind(status: int, code: str | None) -> str:
    """What an admin API error answer means: "absent", "denied" or "failed"."""
    if status in (401, 403):
        return "denied"
    if status in ABSENT_STATUS or (400 <= status < 500 and code in ABSENT_CODES):
        return "absent"
    return "failed"


class _Absent(OperationFailed):
    """The server has no MinIO admin API (only raised for the first, read-only call)."""


class Admin:
    """MinioAdmin on a :class:`~kestra_ops.adapters.storage.Storage`'s endpoint and connection
    pool, with typed one-line errors."""

    def __init__(self, storage, root_user: str, root_password: str):
        from minio import MinioAdmin
        from minio.credentials import StaticProvider

        self.url = storage.url
        self.admin = MinioAdmin(endpoint=storage.endpoint, secure=storage.secure,
                                credentials=StaticProvider(root_user, root_password),
                                http_client=storage.http)

    def call(self, what: str, fn, *args, probe: bool = False, **kwargs):
        from minio.error import MinioAdminException
        from urllib3.exceptions import HTTPError, ResponseError

        from kestra_ops.adapters.neterr import describe
        from kestra_ops.adapters.storage import error_code

        try:
            return fn(*args, **kwargs)
        except MinioAdminException as err:
            try:
                status = int(getattr(err, "_code", 0))
            except ValueError:
                status = 0
            code = error_code(getattr(err, "_body", None))
            answer = f"HTTP {status or '?'}{f' {code}' if code else ''}"
            where = f"MinIO admin {what} at {self.url}"
            kind = answer_kind(status, code)
            if probe and kind == "absent":
                raise _Absent(f"no MinIO admin API at {self.url} ({what}: {answer})") from None
            if kind == "denied":
                raise PermissionDenied(f"{where}: {answer} (are KESTRA_OPS_MINIO_ROOT_USER / "
                                       "KESTRA_OPS_MINIO_ROOT_PASSWORD the root credentials?)"
                                       ) from None
            if status == 404:
                raise NotFound(f"{where}: {answer}") from None
            raise OperationFailed(f"{where}: {answer}") from None
        except HTTPError as err:
            reason = getattr(err, "reason", None)
            cause = reason if isinstance(reason, BaseException) else err
            if isinstance(cause, ResponseError):  # 5xx answers, retried (the Storage's pool)
                raise OperationFailed(f"MinIO admin {what} at {self.url}: {cause}") from None
            raise Unreachable(f"MinIO admin {what} at {self.url}: {describe(err)}") from None

    def available(self) -> tuple[dict | None, str]:
        """(existing policies by name, "") or (None, why there is no admin API to use)."""
        try:
            text = self.call("list policies", self.admin.policy_list, probe=True)
        except _Absent as err:
            return None, str(err)
        try:
            policies = json.loads(text or "{}")
        except ValueError:
            policies = None
        if not isinstance(policies, dict):
            return None, f"no MinIO admin API at {self.url} (list policies is not a JSON object)"
        return policies, ""

    def add_policy(self, name: str, policy: dict) -> None:
        self.call("add policy", self.admin.policy_add, name, policy=policy)

    def account_exists(self, access_key: str) -> bool:
        try:
            self.call("service account info", self.admin.get_service_account, access_key)
        except NotFound:
            return False
        return True

    def add_service_account(self, access_key: str, secret_key: str, *, policy: dict,
                            name: str | None = None, description: str | None = None) -> None:
        self.call("add service account", self.admin.add_service_account, access_key=access_key,
                  secret_key=secret_key, name=name, description=description, policy=policy)

    def delete_service_account(self, access_key: str) -> None:
        self.call("delete service account", self.admin.delete_service_account, access_key)
