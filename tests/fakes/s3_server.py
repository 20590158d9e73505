"""A real S3-protocol server on loopback (moto's threaded server), for storage tests.

moto does not check credentials and keeps objects in memory. One server runs per test session;
the function-scoped ``s3`` fixture resets its state, so every test starts with no buckets.
tests/conftest.py makes both fixtures available to every test.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

ACCESS_KEY = "kestra-test-access"
SECRET_KEY = "kestra-test-secret-0123456789"


@dataclass
class S3Server:
    host: str
    port: int
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY

    @property
    def endpoint(self) -> str:
        """``host:port`` (what kestra-ops.yaml's minio.endpoint holds)."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def client(self):
        from minio import Minio

        return Minio(self.endpoint, access_key=self.access_key, secret_key=self.secret_key,
                     secure=False)

    def create_bucket(self, name: str) -> None:
        self.client().make_bucket(name)

    def buckets(self) -> list[str]:
        return sorted(b.name for b in self.client().list_buckets())

    def reset(self) -> None:
        import urllib.request

        req = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    def env(self) -> dict[str, str]:
        """The variables kestra-ops reads for Kestra's bucket-scoped key (this server's)."""
        return {"KESTRA_OPS_MINIO_ACCESS_KEY": self.access_key,
                "KESTRA_OPS_MINIO_SECRET_KEY": self.secret_key}

    def root_env(self) -> dict[str, str]:
        """The variables ``minio setup`` reads for the root credentials (the same pair here:
        moto checks none; the admin shim takes them as its root)."""
        return {"KESTRA_OPS_MINIO_ROOT_USER": self.access_key,
                "KESTRA_OPS_MINIO_ROOT_PASSWORD": self.secret_key}


@pytest.fixture(scope="session")
def s3_server():
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log lines on stderr
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Server(host, port)
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server):
    """The session's S3 server, emptied for this test."""
    s3_server.reset()
    return s3_server
