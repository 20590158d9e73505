"""MinIO's unauthenticated health endpoints over plain HTTP(S), for the ``minio`` check and the
doctor: :class:`HealthProbe` GETs a path of the environment's MinIO and answers its HTTP status,
or the reason it got none in words (:mod:`kestra_ops.adapters.neterr`).

TLS is verified against ``ca_file`` (minio.ca_file), else REQUESTS_CA_BUNDLE, else
SSL_CERT_FILE (as the storage adapter), else certifi's bundle, unless ``verify=False``
(``--insecure``: the command says so once, not per request). Redirects are not followed.
"""

from __future__ import annotations


def base_url(endpoint: str | None, secure: bool = True) -> str | None:
    """``http(s)://host:port`` of a MinIO endpoint (``host:port`` or a URL), None without one."""
    if not endpoint:
        return None
    from kestra_ops.adapters.storage import split_endpoint

    host, secure = split_endpoint(endpoint, secure)
    return f"{'https' if secure else 'http'}://{host}"


class HealthProbe:
    """GETs of one MinIO's health paths over one connection pool; close it (or use ``with``)."""

    def __init__(self, url: str, *, verify: bool = True, timeout: float = 5.0,
                 ca_file: str | None = None):
        import requests

        self.url = url.rstrip("/")
        self.verify, self.timeout, self.ca_file = verify, timeout, ca_file
        self.server = ""  # the Server header of the last answer ("MinIO", "SeaweedFS 8000GB")
        self.session = requests.Session()
        if not verify:
            import urllib3

            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    def __enter__(self) -> "HealthProbe":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def status(self, path: str) -> tuple[int | None, str]:
        """(HTTP status, "") of ``GET url+path``, or (None, why there was no answer)."""
        import os

        import requests

        from kestra_ops.adapters.neterr import describe

        ca = self.ca_file or os.environ.get("REQUESTS_CA_BUNDLE") or \
            os.environ.get("SSL_CERT_FILE")
        try:
            response = self.session.get(self.url + path, timeout=self.timeout,
                                        verify=(ca or True) if self.verify else False,
                                        allow_redirects=False)
        except requests.exceptions.SSLError as err:
            return None, (f"{describe(err)}; minio.ca_file names the CA that signs it, "
                          "--insecure skips the verification")
        except requests.RequestException as err:  # (an OSError too: caught first)
            return None, describe(err)
        except OSError as err:  # the CA bundle could not be read (requests' own check)
            return None, f"CA bundle {ca}: {err.strerror or 'cannot be read'}"
        response.close()
        self.server = response.headers.get("Server", "")[:100]
        return response.status_code, ""
