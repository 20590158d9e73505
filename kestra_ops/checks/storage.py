"""MinIO health through its unauthenticated endpoints: ``/minio/health/live`` must answer 200;
``/minio/health/cluster`` is checked when the server serves it (503 there: write quorum lost).
Another S3 server (SeaweedFS, Ceph RGW, AWS...: ``live`` not served and no MinIO ``Server``
header) has no such endpoints, so it is checked with S3 itself instead: Kestra's bucket must
exist (HeadBucket with Kestra's key, :class:`BucketProbe`); the item says which check it made.
Without Kestra's key that S3 check cannot be made: a warning saying only reachability was
checked. Plain HTTP(S) to the environment's ``minio.endpoint`` (the probe:
adapters.minio_health); TLS is verified (against minio.ca_file when set) unless ``insecure``.
Skipped (a warning) when no endpoint is configured."""

from __future__ import annotations

from dataclasses import dataclass

from kestra_ops.checks.declare import Check
from kestra_ops.errors import KestraOpsError
from kestra_ops.results import FAIL, PASS, WARN, Item

ORDER = 30
LIVE = "/minio/health/live"
CLUSTER = "/minio/health/cluster"
NOT_SERVED = (400, 403, 404, 405, 501)  # how another S3 server answers a path it does not serve
NO_ENDPOINT = ("no MinIO endpoint for this environment (minio.endpoint in kestra-ops.yaml or "
               "KESTRA_OPS_MINIO_ENDPOINT)")


@dataclass
class Probe:
    """One health URL: its HTTP status, or the error that kept it from answering."""

    url: str
    status: int | None = None
    error: str = ""
    server: str = ""  # the Server header of the answer

    def line(self) -> str:
        return f"{self.url}: " + (f"HTTP {self.status}" if self.status is not None else self.error)


@dataclass
class BucketProbe:
    """Kestra's bucket asked over S3 (HeadBucket): ``exists``, or the ``error`` of the call, or
    why it was not made (``skipped``: no key)."""

    bucket: str = ""
    exists: bool | None = None
    error: str = ""
    skipped: str = ""


def is_minio(live: Probe) -> bool:
    """Whether the server answering is MinIO: it serves ``live``, or says so in ``Server``."""
    return live.status not in NOT_SERVED or live.server.lower().startswith("minio")


def check_minio(base_url: str | None, live: Probe | None, cluster: Probe | None,
                why_skipped: str = "", bucket: BucketProbe | None = None) -> Item:
    """The ``minio`` item, from the two probes (and, for another S3 server, ``bucket``)."""
    if base_url is None or live is None:
        return Item("minio", WARN, f"skipped: {why_skipped or 'no MinIO endpoint'}")
    details = [p.line() for p in (live, cluster) if p is not None]
    data = [{"url": p.url, "status": p.status, "error": p.error}
            for p in (live, cluster) if p is not None]
    if live.status is None:
        return Item("minio", FAIL, f"MinIO at {base_url} not reachable: {live.error}",
                    details, data=data)
    if not is_minio(live):
        return _other_store(base_url, live, bucket, details, data)
    if live.status != 200:
        return Item("minio", FAIL, f"MinIO at {base_url} is not live: {LIVE} answered "
                    f"HTTP {live.status}", details, data=data)
    if cluster is not None and cluster.status == 503:
        return Item("minio", FAIL, f"MinIO at {base_url} is live but has lost write "
                    f"quorum ({CLUSTER} answered HTTP 503)", details, data=data)
    if cluster is not None and cluster.status == 200:
        return Item("minio", PASS, f"MinIO at {base_url} is live and has write quorum",
                    details, data=data)
    return Item("minio", PASS, f"MinIO at {base_url} is live ({CLUSTER} not served: "
                f"{cluster.line() if cluster else 'not asked'})", details, data=data)


def _other_store(base_url: str, live: Probe, bucket: BucketProbe | None, details: list,
                 data: list) -> Item:
    """An S3 server that is not MinIO: judged by its answer to S3 for Kestra's bucket."""
    name = live.server.split(" ")[0] if live.server else "an S3 server"
    said = f"{name} at {base_url} is not MinIO ({LIVE}: HTTP {live.status})"
    if bucket is None or bucket.skipped:
        why = f": {bucket.skipped}" if bucket and bucket.skipped else ""
        return Item("minio", WARN, f"{said}; only its reachability is checked (no S3 check "
                    f"of the bucket{why})", details, data=data)
    data = data + [{"bucket": bucket.bucket, "exists": bucket.exists, "error": bucket.error}]
    if bucket.error:
        return Item("minio", FAIL, f"{said}; S3 check of bucket {bucket.bucket} failed: "
                    f"{bucket.error}", details, data=data)
    if not bucket.exists:
        return Item("minio", FAIL, f"{said}; bucket {bucket.bucket} does not exist there",
                    details, data=data)
    return Item("minio", PASS, f"{said}; checked over S3 instead: bucket {bucket.bucket} "
                "exists", details + [f"S3 HeadBucket {bucket.bucket}: exists"], data=data)


# --------------------------------------------------------------------------- fetchers

def fetch_minio(probe) -> tuple[Probe, Probe | None]:
    """(live, cluster) through ``probe`` (adapters.minio_health.HealthProbe); the cluster
    endpoint is asked only when the live one answers 200."""
    live = Probe(probe.url + LIVE, *probe.status(LIVE))
    live.server = getattr(probe, "server", "")
    cluster = Probe(probe.url + CLUSTER, *probe.status(CLUSTER)) if live.status == 200 else None
    return live, cluster


def fetch_bucket(storage_for) -> BucketProbe:
    """Kestra's bucket over S3: ``storage_for()`` gives (Storage, bucket, "") or (None, bucket,
    why not)."""
    try:
        storage, bucket, why = storage_for()
    except KestraOpsError as err:  # a bad CA file, an endpoint the SDK refuses
        return BucketProbe(error=str(err))
    if storage is None:
        return BucketProbe(bucket, skipped=why)
    try:
        return BucketProbe(bucket, exists=storage.bucket_exists(bucket))
    except KestraOpsError as err:
        return BucketProbe(bucket, error=str(err))


def minio_verdict(probe, why: str = "", storage_for=None) -> Item:
    """The ``minio`` item through ``probe`` (None: skipped, ``why``); ``storage_for`` (see
    :func:`fetch_bucket`) is asked only when the server is not MinIO."""
    if probe is None:
        return check_minio(None, None, None, why or NO_ENDPOINT)
    with probe:
        live, cluster = fetch_minio(probe)
    bucket = None
    if live.status is not None and not is_minio(live) and storage_for is not None:
        bucket = fetch_bucket(storage_for)
    return check_minio(probe.url, live, cluster, bucket=bucket)


def minio_item(ctx) -> Item:
    probe, why = ctx.minio()
    return minio_verdict(probe, why, getattr(ctx, "kestra_bucket", None))


CHECKS = [
    Check("minio", f"{LIVE} answers 200 (and {CLUSTER} when served); another S3 store: "
          "Kestra's bucket exists (S3 HeadBucket)", minio_item,
          needs=("minio",)),
]
