"""kestra-ops' own connections to any S3 endpoint, on REAL SeaweedFS servers: a region and
path-style addressing (kestra-ops.yaml's minio.region / path_style), TLS verified against a CA
made here (minio.ca_file / backup.ca_file), no CA: a one-line error, --insecure: works and
warns; the minio check item judges a store that is not MinIO by an S3 call."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from kestra_ops.adapters.storage import Storage
from kestra_ops.cli import cli
from kestra_ops.errors import InvalidInput, Unreachable
from kestra_ops.storage_options import INSECURE_WARNING
from tests.fakes.seaweed import seaweed, seaweed_tls  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "kestra-dev"
BACKUP_BUCKET = "kestra-dev-backups"
TRACEBACK = "Traceback (most recent call last)"


@pytest.fixture
def tls(seaweed_tls, monkeypatch):  # noqa: F811 - the imported fixture
    """(server, CA file) with kestra-dev and kestra-dev-backups, and Kestra's and the backup
    key variables set to its root identity; no CA from the environment."""
    server, ca = seaweed_tls
    for var in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "KESTRA_OPS_MINIO_ENDPOINT",
                "KESTRA_OPS_MINIO_CA_FILE", "KESTRA_OPS_BACKUP_CA_FILE",
                "KESTRA_OPS_BACKUP_ENDPOINT", "KESTRA_OPS_MINIO_SECURE"):
        monkeypatch.delenv(var, raising=False)
    for var, value in {"KESTRA_OPS_MINIO_ACCESS_KEY": server.root_user,
                       "KESTRA_OPS_MINIO_SECRET_KEY": server.root_password,
                       "KESTRA_OPS_BACKUP_ACCESS_KEY": server.root_user,
                       "KESTRA_OPS_BACKUP_SECRET_KEY": server.root_password}.items():
        monkeypatch.setenv(var, value)
    for name in (BUCKET, BACKUP_BUCKET):
        server.remove_bucket(name)
        server.client().make_bucket(name)
    yield server, ca
    for name in (BUCKET, BACKUP_BUCKET):
        server.remove_bucket(name)


def project(tmp_path: Path, endpoint: str, minio_extra: str = "") -> Path:
    (tmp_path / "values").mkdir(exist_ok=True)
    for name in ("base.yaml", "dev.yaml"):
        shutil.copy(ROOT / "values" / name, tmp_path / "values" / name)
    (tmp_path / "kestra-ops.yaml").write_text(textwrap.dedent(f"""\
        defaults: {{chart: {ROOT / 'charts' / 'kestra'}}}
        environments:
          dev:
            values: [values/base.yaml, values/dev.yaml]
            minio: {{endpoint: "{endpoint}", bucket: {BUCKET}, region: us-east-1,
                     path_style: true{minio_extra}}}
        """))
    return tmp_path


def run(root: Path, *args: str):
    return CliRunner().invoke(cli, ["--config", str(root / "kestra-ops.yaml"), *args])


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines()
            if line.strip() and not line.startswith(("- ", "  ", "minio check dev: "))]


# --------------------------------------------------------------------------- region, path style

def test_path_style_with_a_region_set_round_trips_on_seaweedfs(seaweed):  # noqa: F811
    storage = Storage(seaweed.endpoint, seaweed.root_user, seaweed.root_password, secure=False,
                      region="eu-west-3", path_style=True)
    bucket = "kestra-path-style"
    seaweed.remove_bucket(bucket)
    try:
        storage.make_bucket(bucket)
        storage.put_bytes(bucket, "main/a/_kv/x.ion", b"value")
        assert storage.get_bytes(bucket, "main/a/_kv/x.ion") == b"value"
        assert [o.name for o in storage.list_objects(bucket)] == ["main/a/_kv/x.ion"]
        # the bucket goes in the path; requests are signed for the region given
        url = storage.client._base_url.build(method="GET", region="eu-west-3",
                                             bucket_name=bucket, object_name="k")
        assert url.netloc == seaweed.endpoint and url.path == f"/{bucket}/k"
        assert storage.client._get_region(bucket) == "eu-west-3"
    finally:
        seaweed.remove_bucket(bucket)


def test_virtual_host_addressing_is_applied_too(seaweed):  # noqa: F811
    """path_style: false puts the bucket in the host name: 127.0.0.1 has no such names, so
    the request cannot even be made (the setting reaches the wire)."""
    storage = Storage(seaweed.endpoint, seaweed.root_user, seaweed.root_password, secure=False,
                      region="us-east-1", path_style=False, retries=0, timeout=3)
    with pytest.raises(Unreachable) as err:
        storage.bucket_exists("kestra-virtual")
    assert "name not resolved" in str(err.value)


# --------------------------------------------------------------------------- TLS

def test_tls_verified_with_the_ca_file(tls, tmp_path):
    server, ca = tls
    root = project(tmp_path, server.https_url, f", ca_file: {ca}")
    result = run(root, "minio", "check", "--env", "dev", "--output", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    steps = {s["name"]: s for s in out["steps"]}
    assert steps["probe"]["status"] == "pass"
    assert out["endpoint"] == server.https_url and INSECURE_WARNING not in result.output


def test_a_relative_ca_file_is_read_from_the_config_folder(tls, tmp_path):
    server, ca = tls
    (tmp_path / "certs").mkdir()
    shutil.copy(ca, tmp_path / "certs" / "s3-ca.pem")
    root = project(tmp_path, server.https_url, ", ca_file: certs/s3-ca.pem")
    result = run(root, "backup", "list", "--env", "dev", "--output", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sets"] == []


def test_without_the_ca_it_fails_in_one_line_without_traceback(tls, tmp_path):
    server, _ca = tls
    root = project(tmp_path, server.https_url)
    result = run(root, "backup", "list", "--env", "dev")
    assert result.exit_code == 1
    assert TRACEBACK not in result.output
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert errors[0] == (f"error: cannot reach object storage at {server.https_url}: TLS "
                         "certificate verify failed: unable to get local issuer certificate")
    assert errors[1].startswith("hint: name the CA bundle") and len(errors) == 2
    # the check item says the same (a failed item, not a crash)
    check = run(root, "minio", "check", "--env", "dev", "--output", "json")
    assert check.exit_code == 1 and TRACEBACK not in check.output
    steps = {s["name"]: s for s in json.loads(check.stdout)["steps"]}
    assert "TLS certificate verify failed" in steps["health"]["detail"]


def test_insecure_works_and_warns(tls, tmp_path):
    server, _ca = tls
    root = project(tmp_path, server.https_url)
    result = run(root, "minio", "check", "--env", "dev", "--insecure", "--output", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {s["name"]: s["status"] for s in out["steps"]}["probe"] == "pass"
    assert INSECURE_WARNING in out["warnings"]
    text = run(root, "backup", "list", "--env", "dev", "--insecure")
    assert text.exit_code == 0, text.output
    assert f"warning: {INSECURE_WARNING}" in text.stdout
    assert "InsecureRequestWarning" not in text.output  # said once, by us


@pytest.mark.parametrize("content, words", [
    (None, "file not found"),
    (b"not a certificate\n", "holds no PEM CA certificate (-----BEGIN CERTIFICATE-----)"),
])
def test_a_missing_or_unusable_ca_file_is_one_line_exit_2(tls, tmp_path, content, words):
    server, _ca = tls
    bad = tmp_path / "bad-ca.pem"
    if content is not None:
        bad.write_bytes(content)
    root = project(tmp_path, server.https_url, f", ca_file: {bad}")
    result = run(root, "minio", "check", "--env", "dev")
    assert result.exit_code == 2, result.output
    assert TRACEBACK not in result.output
    assert result.stderr.splitlines()[0] == f"error: minio.ca_file {bad}: {words}"


def test_ca_file_unreadable_is_named(tls, tmp_path):
    server, ca = tls
    with pytest.raises(InvalidInput, match=r"^backup.ca_file .*: is a directory"):
        Storage(server.https_url, "a", "b", ca_file=str(tmp_path), ca_setting="backup.ca_file")


# --------------------------------------------------------------------------- check item

def test_check_item_asks_a_non_minio_store_over_s3(tls, tmp_path, monkeypatch):
    """SeaweedFS serves no /minio/health/*: the item checks Kestra's bucket with S3 instead
    and says so; a bucket that is not there fails it."""
    from kestra_ops.adapters.minio_health import HealthProbe
    from kestra_ops.checks.storage import minio_verdict
    from kestra_ops.settings import load_config
    from kestra_ops.workflows.check import kestra_bucket

    server, ca = tls
    root = project(tmp_path, server.https_url, f", ca_file: {ca}")
    env = load_config(root / "kestra-ops.yaml").environment("dev")

    def item():
        return minio_verdict(HealthProbe(server.https_url, ca_file=env.minio_ca_file), "",
                             lambda: kestra_bucket(env, False, 5.0))

    passed = item()
    assert passed.status == "pass", passed
    assert passed.reason == (f"SeaweedFS at {server.https_url} is not MinIO (/minio/health/"
                             f"live: HTTP 403); checked over S3 instead: bucket {BUCKET} exists")
    server.remove_bucket(BUCKET)
    failed = item()
    assert failed.status == "fail" and failed.reason.endswith(
        f"bucket {BUCKET} does not exist there")
    monkeypatch.delenv("KESTRA_OPS_MINIO_ACCESS_KEY")
    monkeypatch.delenv("KESTRA_OPS_MINIO_SECRET_KEY")
    warned = item()
    assert warned.status == "warn" and "only its reachability is checked" in warned.reason
