"""``backup run`` in database.mode external against a real throwaway PostgreSQL serving TLS
(its own CA; server certificate for localhost): the URL is built from the values, sslmode
verify-full by default, a weaker URL refused, a server whose CA is not trusted refused, and the
dump restores."""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile

import pytest

from tests.fakes.postgres_server import PASSWORD, pg_bindir, start_cluster
from tests.integration.backup_support import (  # noqa: F401 - fixtures
    BACKUP_BUCKET, backup_json, contents, fill, kestra, objects, pg_cluster, pg_db, project, run,
    s3, seaweed)


def _cert(subject_cn: str, key, issuer=None, issuer_key=None, *, ca: bool, sans=()):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer.subject if issuer else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        import ipaddress

        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(s) if not s[0].isdigit() else x509.IPAddress(ipaddress.ip_address(s))
             for s in sans]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def _pem(obj) -> bytes:
    from cryptography.hazmat.primitives import serialization

    if hasattr(obj, "private_bytes"):
        return obj.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.NoEncryption())
    return obj.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def tls_pg():
    """(cluster, CA file, another CA's file): a PostgreSQL with ssl=on, its certificate issued
    by a throwaway CA for localhost."""
    if pg_bindir() is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not installed")
    from cryptography.hazmat.primitives.asymmetric import ec

    tmp = tempfile.mkdtemp(prefix="kestra-ops-pgtls-", dir="/tmp")
    try:
        ca_key, other_key, key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
        ca = _cert("kestra-ops test CA", ca_key, ca=True)
        other = _cert("another CA", other_key, ca=True)
        server = _cert("localhost", key, ca, ca_key, ca=False, sans=("localhost", "127.0.0.1"))
        files = {"ca.pem": _pem(ca), "other.pem": _pem(other), "server.crt": _pem(server),
                 "server.key": _pem(key)}
        for fname, data in files.items():
            path = os.path.join(tmp, fname)
            with open(path, "wb") as fh:
                fh.write(data)
            os.chmod(path, 0o600 if fname == "server.key" else 0o644)
            if os.geteuid() == 0 and fname.startswith("server"):
                shutil.chown(path, "postgres", "postgres")
        os.chmod(tmp, 0o755)
        with start_cluster(ssl="on", ssl_cert_file=os.path.join(tmp, "server.crt"),
                           ssl_key_file=os.path.join(tmp, "server.key")) as cluster:
            yield cluster, os.path.join(tmp, "ca.pem"), os.path.join(tmp, "other.pem")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def external_env(project, s3, kestra, tls_pg, monkeypatch):  # noqa: F811
    """The project's dev values in database.mode external, pointing at the TLS server as
    localhost; the backup bucket and its key; no KESTRA_OPS_DATABASE_URL."""
    cluster, ca, _ = tls_pg
    name = cluster.create_db()
    fill(cluster, name, rows=2_000)
    with open(project / "values" / "dev.yaml", "a") as fh:
        fh.write(f"\ndatabase:\n  mode: external\n  external:\n    host: localhost\n"
                 f"    port: {cluster.port}\n    database: {name}\n    username: kestra\n")
    s3.create_bucket("kestra-dev")
    s3.create_bucket(BACKUP_BUCKET)
    for key, value in {**s3.env(), **s3.writer_env()}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KESTRA_OPS_MINIO_ENDPOINT", s3.endpoint)
    monkeypatch.setenv("KESTRA_OPS_MINIO_SECURE", "false")
    monkeypatch.delenv("KESTRA_OPS_DATABASE_URL", raising=False)
    monkeypatch.delenv("PGSSLMODE", raising=False)
    monkeypatch.setenv("KESTRA_OPS_DB_PASSWORD", PASSWORD)
    return project, cluster, name


def test_external_mode_dumps_over_verified_tls(external_env, tls_pg, monkeypatch, pg_cluster,
                                               pg_db, s3):  # noqa: F811
    project, cluster, name = external_env
    monkeypatch.setenv("PGSSLROOTCERT", tls_pg[1])  # libpq's: pg_dump and psycopg read it
    code, data, output = backup_json(project, "--what", "db")
    assert code == 0, output
    assert data["manifest"]["postgres"]["database"] == name
    assert PASSWORD not in output
    assert [o.rsplit("/", 1)[1] for o in objects(s3)] == ["db.dump.zst", "manifest.json"]
    # the dump, taken over verified TLS, restores into another database
    target = pg_db()
    restored = run(project, "backup", "restore", "--env", "dev", data["set"], "--yes",
                   "--to-database", pg_cluster.url(target))
    assert restored.exit_code == 0, restored.output
    assert contents(pg_cluster, target) == contents(cluster, name)


def test_external_mode_refuses_a_server_its_ca_does_not_vouch_for(external_env, tls_pg,
                                                                  monkeypatch, s3):  # noqa: F811
    project, _, _ = external_env
    monkeypatch.setenv("PGSSLROOTCERT", tls_pg[2])  # another CA
    code, _, output = backup_json(project, "--what", "db")
    assert code == 1
    assert "certificate verify failed" in output and "Traceback" not in output
    assert objects(s3) == []  # nothing written


def test_external_mode_refuses_a_url_weaker_than_the_values(external_env, s3):  # noqa: F811
    project, cluster, name = external_env
    weak = f"postgresql://kestra@localhost:{cluster.port}/{name}?sslmode=require"
    code, _, output = backup_json(project, "--what", "db", "--database-url", weak)
    assert code == 2
    assert "sslmode require is weaker than database.external.sslmode verify-full" in output
    assert objects(s3) == []

