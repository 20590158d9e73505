"""Any S3 endpoint, without a server: kestra-ops.yaml's region / path_style / ca_file (checked
at file:line, inherited by the backup destination on the same endpoint), the adapter's CA file
check, Kestra's store read from its values (minio and s3), and the kestra/s3-* values rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from kestra_ops.adapters.storage import Storage, check_ca_file
from kestra_ops.errors import ConfigError, InvalidInput
from kestra_ops.settings import load_config
from kestra_ops.storage_options import backup_options, minio_options
from kestra_ops.values.rules import Context
from kestra_ops.values.rules_storage import s3_storage
from kestra_ops.workflows.backup.kestra_store import from_values

NO_CACHE = {"KESTRA_OPS_NO_CACHE": "1"}


def env_of(tmp_path: Path, text: str, environ: dict | None = None, name: str = "dev"):
    (tmp_path / "kestra-ops.yaml").write_text(text)
    config = load_config(start=tmp_path, environ={**NO_CACHE, **(environ or {})})
    return config.environment(name, environ=environ or {})


def refused(tmp_path: Path, text: str, line: int, *says: str) -> None:
    (tmp_path / "kestra-ops.yaml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(start=tmp_path, environ=NO_CACHE)
    message = f"{err.value} {err.value.hint or ''}"
    assert f"kestra-ops.yaml:{line}: " in str(err.value) and "\n" not in str(err.value)
    assert err.value.exit_code == 2
    for part in says:
        assert part in message, message


# --------------------------------------------------------------------------- kestra-ops.yaml

def test_options_are_read_and_a_relative_ca_file_is_from_the_config_folder(tmp_path):
    env = env_of(tmp_path, """\
environments:
  dev:
    minio: {endpoint: "https://s3.example:443", region: eu-west-3, path_style: true,
            ca_file: certs/ca.pem}
""")
    assert minio_options(env) == {"region": "eu-west-3", "path_style": True,
                                  "ca_file": str(tmp_path / "certs" / "ca.pem"),
                                  "ca_setting": "minio.ca_file", "cert_check": True}


def test_the_backup_destination_inherits_only_on_the_same_endpoint(tmp_path):
    same = env_of(tmp_path, """\
environments:
  dev:
    minio: {endpoint: "s3:9000", region: r1, path_style: true, ca_file: /ca.pem}
""")
    assert backup_options(same)["region"] == "r1" and backup_options(same)["ca_file"] == "/ca.pem"
    other = env_of(tmp_path, """\
environments:
  dev:
    minio: {endpoint: "s3:9000", region: r1, path_style: true, ca_file: /ca.pem}
    backup: {endpoint: "https://backups.example", region: r2}
""")
    assert backup_options(other) == {"region": "r2", "path_style": None, "ca_file": None,
                                     "ca_setting": "minio.ca_file", "cert_check": True}


def test_variables_set_them_and_are_checked(tmp_path):
    text = "environments:\n  dev: {}\n"
    env = env_of(tmp_path, text, {"KESTRA_OPS_MINIO_PATH_STYLE": "false",
                                  "KESTRA_OPS_BACKUP_REGION": "us-west-2",
                                  "KESTRA_OPS_BACKUP_CA_FILE": "ca.pem"})
    assert env.minio_path_style is False and env.backup_region == "us-west-2"
    assert env.backup_ca_file == "ca.pem"  # a variable's path: from the working directory
    with pytest.raises(ConfigError, match="^KESTRA_OPS_MINIO_PATH_STYLE: must be true or false"):
        env_of(tmp_path, text, {"KESTRA_OPS_MINIO_PATH_STYLE": "sometimes"})
    with pytest.raises(ConfigError, match="^KESTRA_OPS_MINIO_REGION: must be an S3 region"):
        env_of(tmp_path, text, {"KESTRA_OPS_MINIO_REGION": "us east 1"})


def test_insecure_is_only_the_flag(tmp_path):
    (tmp_path / "kestra-ops.yaml").write_text("environments:\n  dev: {}\n")
    config = load_config(start=tmp_path, environ=NO_CACHE)
    assert minio_options(config.environment("dev", environ={}))["cert_check"] is True
    flagged = config.environment("dev", environ={}, flags={"storage_insecure": True})
    assert minio_options(flagged)["cert_check"] is False
    assert backup_options(flagged)["cert_check"] is False


@pytest.mark.parametrize("body, line, says", [
    ("    minio: {endpoint: s3, path_styel: true}\n", 3, ("path_styel: unknown key",
                                                        "did you mean 'path_style'?")),
    ("    minio: {endpoint: s3, path_style: yes please}\n", 3, ("path_style: must be true",)),
    ("    minio:\n      endpoint: s3\n      region: [us-east-1]\n", 5, ("region: must be an S3",)),
    ("    backup:\n      ca_file: -rf\n", 4, ("ca_file: '-rf' is not a file path",)),
    ("    backup:\n      ca_flie: ca.pem\n", 4, ("unknown key", "did you mean 'ca_file'?")),
])
def test_wrong_keys_and_types_are_exit_2_at_their_line(tmp_path, body, line, says):
    refused(tmp_path, "environments:\n  dev:\n" + body, line, *says)


# --------------------------------------------------------------------------- the CA file

def test_ca_file_problems_are_one_line_naming_the_setting(tmp_path):
    with pytest.raises(InvalidInput, match=r"^minio.ca_file .*nope.pem: file not found$"):
        check_ca_file(str(tmp_path / "nope.pem"), "minio.ca_file")
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(InvalidInput, match=r"holds no PEM CA certificate"):
        check_ca_file(str(junk), "backup.ca_file")
    fifo = tmp_path / "fifo"
    import os

    os.mkfifo(fifo)
    with pytest.raises(InvalidInput, match=r"^ca_file .*fifo: is a FIFO"):  # never blocks
        check_ca_file(str(fifo))


def test_a_ca_file_is_not_read_for_plain_http(tmp_path):
    storage = Storage("http://127.0.0.1:9", "a", "b", ca_file=str(tmp_path / "absent.pem"))
    assert storage.ca_file is None and storage.url == "http://127.0.0.1:9"


def test_path_style_forces_the_sdks_addressing():
    aws = "s3.eu-west-3.amazonaws.com"
    default = Storage(aws, "a", "b", region="eu-west-3")
    forced = Storage(aws, "a", "b", region="eu-west-3", path_style=True)
    virtual = Storage("127.0.0.1:9", "a", "b", secure=False, path_style=False)

    def host_and_path(storage):
        url = storage.client._base_url.build(method="GET", region="eu-west-3",
                                             bucket_name="kestra-x", object_name="k")
        return url.netloc, url.path

    assert host_and_path(default) == (f"kestra-x.{aws}", "/k")  # the SDK: virtual for AWS
    assert host_and_path(forced) == (aws, "/kestra-x/k")
    assert host_and_path(virtual) == ("kestra-x.127.0.0.1:9", "/k")


# --------------------------------------------------------------------------- Kestra's values

def test_kestras_store_from_its_values():
    s3 = from_values({"kestra": {"storage": {"type": "s3", "minio": {"bucket": "stale"}, "s3": {
        "endpoint": "https://rgw.storage.svc:443", "region": "us-east-1",
        "force-path-style": True, "bucket": "kestra-dev"}}}})
    assert (s3.type, s3.bucket, s3.endpoint, s3.secure, s3.region, s3.path_style) == (
        "s3", "kestra-dev", "https://rgw.storage.svc:443", True, "us-east-1", True)
    plain = from_values({"kestra": {"storage": {"type": "s3", "s3": {
        "endpoint": "http://seaweed:8333", "bucket": "kestra-dev"}}}})
    assert plain.secure is False and plain.path_style is False  # Kestra's default: vhost
    minio = from_values({"kestra": {"storage": {"type": "minio", "minio": {
        "endpoint": "minio.x.svc", "port": 9000, "secure": False, "bucket": "kestra-dev"}}}})
    assert (minio.endpoint, minio.secure, minio.path_style) == ("minio.x.svc:9000", False, True)
    assert from_values({"kestra": {}}) is None and from_values(None) is None
    assert from_values({"kestra": {"storage": {"type": "gcs"}}}).type == "gcs"


def hits(s3: dict | None, env: str = "production", **storage) -> dict:
    values = {"kestra": {"storage": {"type": "s3", **({"s3": s3} if s3 is not None else {}),
                                     **storage}}}
    return {(h.rule, h.severity, h.path[-1]): h for h in s3_storage(Context(values, env))}


GOOD = {"endpoint": "http://seaweedfs.storage.svc.cluster.local:8333", "region": "us-east-1",
        "forcePathStyle": True, "bucket": "kestra-production",
        "accessKey": "${KESTRA_MINIO_ACCESS_KEY}", "secretKey": "${KESTRA_MINIO_SECRET_KEY}"}


def test_a_good_s3_section_has_no_findings_in_either_spelling():
    assert hits(GOOD) == {}
    kebab = {"endpoint": GOOD["endpoint"], "force-path-style": True,
             "bucket": "kestra-production", "access-key": "${A}", "secret-key": "${B}",
             "sts-role-arn": "arn:aws:iam::1:role/x"}
    assert hits(kebab) == {}


def test_misspelt_keys_name_the_close_one():
    found = hits({**GOOD, "forcepathstyle": True, "acessKey": "${X}"})
    assert found[("kestra/s3-unknown-key", "error", "forcepathstyle")].hint == \
        "did you mean 'forcePathStyle'?"
    assert found[("kestra/s3-unknown-key", "error", "acessKey")].hint == \
        "did you mean 'accessKey'?"


def test_endpoint_and_path_style_rules():
    no_scheme = hits({**GOOD, "endpoint": "seaweedfs.storage.svc.cluster.local:8333"})
    assert ("kestra/s3-endpoint", "error", "endpoint") in no_scheme
    with_path = hits({**GOOD, "endpoint": "https://s3.example.com/bucket"})
    assert ("kestra/s3-endpoint", "error", "endpoint") in with_path
    outside = hits({**GOOD, "endpoint": "http://s3.example.com:8333"})
    assert ("kestra/s3-endpoint", "warning", "endpoint") in outside
    assert hits({**GOOD, "endpoint": "http://s3.example.com:8333", "bucket": "kestra-dev"},
                env="dev") == {}  # plain http is dev's business
    unset = {k: v for k, v in GOOD.items() if k != "forcePathStyle"}
    assert ("kestra/s3-path-style", "warning", "endpoint") in hits(unset)
    assert ("kestra/s3-path-style", "error", "forcePathStyle") in hits(
        {**GOOD, "forcePathStyle": False})
    aws = {**unset, "endpoint": "https://s3.eu-west-3.amazonaws.com"}
    assert hits(aws) == {}  # AWS answers virtual-host names


def test_a_missing_section_or_bucket_and_bucket_names():
    assert ("kestra/s3-storage", "error", "storage") in hits(None)
    assert ("kestra/s3-storage", "error", "s3") in hits({**GOOD, "bucket": ""})
    assert ("kestra/bucket-env", "error", "bucket") in hits({**GOOD, "bucket": "kestra-dev"})
    assert ("kestra/bucket-name", "error", "bucket") in hits({**GOOD, "bucket": "Kestra_Prod"})
    other_type = {(h.rule) for h in s3_storage(Context({"kestra": {"storage": {
        "type": "minio", "s3": {"bogus": 1}}}}, "production"))}
    assert other_type == set()  # only type: s3 reads the s3 section


def test_a_password_in_the_s3_endpoint_is_never_shown():
    found = hits({**GOOD, "endpoint": "http://ak:SuperSecret99@s3.example.com:8333"})
    hit = found[("kestra/s3-endpoint", "error", "endpoint")]
    assert "SuperSecret99" not in hit.message and "******" in hit.message


def test_the_storage_copy_refuses_values_it_cannot_read_before_connecting(tmp_path):
    from kestra_ops.workflows.backup.locations import kestra_storage_for

    env = env_of(tmp_path, "environments:\n  dev: {}\n")
    with pytest.raises(InvalidInput) as err:
        kestra_storage_for(env, {"kestra": {"storage": {"type": "s3", "s3": {
            "endpoint": "http://ak:SuperSecret99@s3.example.com", "bucket": "kestra-dev"}}}})
    assert "carries credentials" in str(err.value) and "SuperSecret99" not in str(err.value)
    with pytest.raises(InvalidInput, match="type 'azure'"):
        kestra_storage_for(env, {"kestra": {"storage": {"type": "azure"}}})
