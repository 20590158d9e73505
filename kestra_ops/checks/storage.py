"""MinIO health through its unauthenticated endpoints: ``/minio/health/live`` must answer 200;
``/minio/health/cluster`` is checked when the server serves it (503 there: write quorum lost).
Another S3 server (its ``Server`` header is not MinIO's: SeaweedFS, Ceph RGW...) has no such
endpoints: that it answers HTTP at all is all this item can say, so it is a warning naming the
server, not a failure (storage setup users moving off MinIO keep a usable checklist).
Plain HTTP(S) to the environment's ``minio.endpoint`` (the probe: adapters.minio_health); TLS is
verified unless ``insecure``. Skipped (a warning) when no endpoint is configured."""

from __future__ import annotations

from dataclasses import dataclass

from kestra_ops.checks.declare import Check
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


def check_minio(base_url: str | None, live: Probe | None, cluster: Probe | None,
                why_skipped: str = "") -> Item:
    """The ``minio`` item, from the two probes."""
    if base_url is None or live is None:
        return Item("minio", WARN, f"skipped: {why_skipped or 'no MinIO endpoint'}")
    details = [p.line() for p in (live, cluster) if p is not None]
    data = [{"url": p.url, "status": p.status, "error": p.error}
            for p in (live, cluster) if p is not None]
    if live.status is None:
        return Item("minio", FAIL, f"MinIO at {base_url} not reachable: {live.error}",
                    details, data=data)
    if live.status in NOT_SERVED and live.server and not live.server.lower().startswith("minio"):
        return Item("minio", WARN, f"{live.server} at {base_url} answers but is not MinIO: "
                    f"{LIVE} is not served (HTTP {live.status}), so only its reachability is "
                    "checked", details, data=data)
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


# --------------------------------------------------------------------------- fetchers

def fetch_minio(probe) -> tuple[Probe, Probe | None]:
    """(live, cluster) through ``probe`` (adapters.minio_health.HealthProbe); the cluster
    endpoint is asked only when the live one answers 200."""
    live = Probe(probe.url + LIVE, *probe.status(LIVE))
    live.server = getattr(probe, "server", "")
    cluster = Probe(probe.url + CLUSTER, *probe.status(CLUSTER)) if live.status == 200 else None
    return live, cluster


def minio_verdict(probe, why: str = "") -> Item:
    """The ``minio`` item through ``probe`` (None: skipped, ``why``)."""
    if probe is None:
        return check_minio(None, None, None, why or NO_ENDPOINT)
    with probe:
        return check_minio(probe.url, *fetch_minio(probe))


def minio_item(ctx) -> Item:
    return minio_verdict(*ctx.minio())


CHECKS = [
    Check("minio", f"{LIVE} answers 200 (and {CLUSTER} when served)", minio_item,
          needs=("minio",)),
]
