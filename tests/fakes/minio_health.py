"""MinIO's unauthenticated health endpoints on loopback (moto, our S3 server, has none).

    with MinioHealth() as minio:        # 127.0.0.1, ephemeral port
        minio.live = 503                # /minio/health/live answers 503
        minio.cluster = None            # /minio/health/cluster is not served (404)
        minio.endpoint                  # "127.0.0.1:PORT", what kestra-ops.yaml's minio.endpoint holds

``MinioHealth(tls=(certfile, keyfile))`` serves HTTPS (see :func:`self_signed`). ``requests``
records every path asked for.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.fakes.loopback import LoopbackServer


class MinioHealth(LoopbackServer):
    def __init__(self, *, live: int = 200, ready: int = 200, cluster: int | None = 200,
                 tls: tuple[str, str] | None = None):
        self.live, self.ready, self.cluster = live, ready, cluster
        self.tls = tls
        self.requests: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> "MinioHealth":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                fake.requests.append(self.path)
                status = {"/minio/health/live": fake.live, "/minio/health/ready": fake.ready,
                          "/minio/health/cluster": fake.cluster}.get(self.path.split("?")[0])
                status = 404 if status is None else status
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.send_header("Server", "MinIO")
                self.end_headers()

            do_HEAD = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self.tls:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True,
                         name="fake-minio-health").start()
        return self

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.endpoint}"


def self_signed(folder) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (cert.pem, key.pem in ``folder``)."""
    import datetime
    import ipaddress
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    folder = Path(folder)
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)
