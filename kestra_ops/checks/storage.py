"""MinIO health through its unauthenticated endpoints: ``/minio/health/live`` must answer 200;
``/minio/health/cluster`` is checked when the server serves it (503 there: write quorum lost).
Plain HTTP(S) to the environment's ``minio.endpoint``; TLS is verified unless ``insecure``.
Skipped (a warning) when no endpoint is configured."""

from __future__ import annotations

from dataclasses import dataclass

from kestra_ops.checks import FAIL, PASS, WARN, CheckResult

LIVE = "/minio/health/live"
CLUSTER = "/minio/health/cluster"


@dataclass
class Probe:
    """One health URL: its HTTP status, or the error that kept it from answering."""

    url: str
    status: int | None = None
    error: str = ""

    def line(self) -> str:
        return f"{self.url}: " + (f"HTTP {self.status}" if self.status is not None else self.error)


def check_minio(base_url: str | None, live: Probe | None, cluster: Probe | None,
                why_skipped: str = "") -> CheckResult:
    """The ``minio`` item, from the two probes."""
    if base_url is None or live is None:
        return CheckResult("minio", WARN, f"skipped: {why_skipped or 'no MinIO endpoint'}")
    details = [p.line() for p in (live, cluster) if p is not None]
    items = [{"url": p.url, "status": p.status, "error": p.error}
             for p in (live, cluster) if p is not None]
    if live.status is None:
        return CheckResult("minio", FAIL, f"MinIO at {base_url} not reachable: {live.error}",
                           details, items=items)
    if live.status != 200:
        return CheckResult("minio", FAIL, f"MinIO at {base_url} is not live: {LIVE} answered "
                           f"HTTP {live.status}", details, items=items)
    if cluster is not None and cluster.status == 503:
        return CheckResult("minio", FAIL, f"MinIO at {base_url} is live but has lost write "
                           f"quorum ({CLUSTER} answered HTTP 503)", details, items=items)
    if cluster is not None and cluster.status == 200:
        return CheckResult("minio", PASS, f"MinIO at {base_url} is live and has write quorum",
                           details, items=items)
    return CheckResult("minio", PASS, f"MinIO at {base_url} is live ({CLUSTER} not served: "
                       f"{cluster.line() if cluster else 'not asked'})", details, items=items)


# --------------------------------------------------------------------------- fetchers

def base_url(env) -> str | None:
    """``http(s)://host:port`` of the environment's MinIO, or None when none is configured."""
    if not env.minio_endpoint:
        return None
    from kestra_ops.adapters.storage import split_endpoint

    host, secure = split_endpoint(env.minio_endpoint, env.minio_secure)
    return f"{'https' if secure else 'http'}://{host}"


def probe(url: str, *, verify: bool = True, timeout: float = 5.0, session=None) -> Probe:
    """GET ``url``; TLS verified against REQUESTS_CA_BUNDLE, else SSL_CERT_FILE (as the
    storage adapter), else certifi's bundle."""
    import os

    import requests

    from kestra_ops.adapters.neterr import describe

    ca = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    if not verify:  # asked for (--insecure): the command says so once, not per request
        import urllib3

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    try:
        response = (session or requests).get(url, timeout=timeout,
                                             verify=(ca or True) if verify else False,
                                             allow_redirects=False)
    except requests.exceptions.SSLError as err:
        return Probe(url, error=f"{describe(err)}; --insecure skips the verification")
    except requests.RequestException as err:
        return Probe(url, error=describe(err))
    response.close()
    return Probe(url, status=response.status_code)


def fetch_minio(env, *, insecure: bool = False, timeout: float = 5.0
                ) -> tuple[str | None, Probe | None, Probe | None, str]:
    """(base URL, live probe, cluster probe, why skipped)."""
    url = base_url(env)
    if url is None:
        return None, None, None, ("no MinIO endpoint for this environment (minio.endpoint in "
                                  "kestra-ops.yaml or KESTRA_OPS_MINIO_ENDPOINT)")
    import requests

    with requests.Session() as session:
        live = probe(url + LIVE, verify=not insecure, timeout=timeout, session=session)
        cluster = None
        if live.status == 200:
            cluster = probe(url + CLUSTER, verify=not insecure, timeout=timeout, session=session)
    return url, live, cluster, ""
