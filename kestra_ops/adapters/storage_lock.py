"""S3 object lock on a bucket (the backup bucket), through a
:class:`~kestra_ops.adapters.storage.Storage` and its typed one-line errors (``Storage.call``).

Object lock can only be turned on when a bucket is created (S3's ``x-amz-bucket-object-lock-
enabled`` header; the minio SDK's ``make_bucket(name, object_lock=True)``), and it turns
versioning on with it. A server without it refuses the header; the codes below mean "this
server has no object lock", which callers report as unsupported, not as a failure.
"""

from __future__ import annotations

from typing import NamedTuple

# answers meaning "no object lock on this server" (S3 / MinIO / other stores)
UNSUPPORTED = frozenset({"NotImplemented", "XMinioNotImplemented", "InvalidRequest",
                         "UnsupportedOperation", "MethodNotAllowed",
                         "XMinioObjectLockNotSupported", "ObjectLockNotSupported"})
# the bucket exists but was created without object lock
NOT_ENABLED = frozenset({"ObjectLockConfigurationNotFoundError", "ObjectLockConfigurationNotFound",
                         "InvalidBucketState", "NoSuchObjectLockConfiguration"})


class LockState(NamedTuple):
    enabled: bool
    mode: str | None = None  # "GOVERNANCE" / "COMPLIANCE" default retention, if any
    days: int | None = None  # its length in days (None: no default retention, or in years)


def make_locked_bucket(storage, name: str) -> bool:
    """Create ``name`` with object lock (and so versioning); False, creating nothing, when the
    server refuses object lock (see :data:`UNSUPPORTED`)."""
    from minio.error import S3Error

    def make() -> bool:
        try:
            storage.client.make_bucket(name, object_lock=True)
        except S3Error as err:
            if err.code in UNSUPPORTED:
                return False
            raise
        return True

    return bool(storage.call(f"bucket {name}", make))


def lock_state(storage, bucket: str) -> LockState | None:
    """The bucket's object lock: LockState(False) when the bucket has none, None when the server
    has no object lock at all."""
    from minio.error import S3Error

    def get():
        try:
            config = storage.client.get_object_lock_config(bucket)
        except S3Error as err:
            if err.code in NOT_ENABLED:
                return LockState(False)
            if err.code in UNSUPPORTED:
                return None
            raise
        days = config.duration if config.duration_unit == "Days" else None
        return LockState(True, config.mode, days)

    return storage.call(f"bucket {bucket}", get)


def set_default_retention(storage, bucket: str, days: int) -> None:
    """Default retention of new object versions: GOVERNANCE, ``days`` days (a holder of
    s3:BypassGovernanceRetention may still delete them; nobody else can before then)."""
    from minio.commonconfig import GOVERNANCE
    from minio.objectlockconfig import DAYS, ObjectLockConfig

    storage.call(f"bucket {bucket}", storage.client.set_object_lock_config, bucket,
                 ObjectLockConfig(GOVERNANCE, days, DAYS))
