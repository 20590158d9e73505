"""The one credentials resolver: the order of its sources (variable, <VARIABLE>_FILE, values,
the Kubernetes Secret named in existingSecrets), what each says when nothing holds a credential
(names only, never a value), and the answers built on it (MinIO keys, root, database URL)."""

from __future__ import annotations

import base64
import json

import pytest

from kestra_ops import credentials as creds
from kestra_ops.errors import ConfigError, InvalidInput, NotFound
from kestra_ops.settings import Environment

VALUE = "Zq9-file-Secret-7"


class SecretKube:
    """A cluster connection holding Secrets (name -> data), read as the kube adapter reads."""

    def __init__(self, secrets: dict[str, dict[str, str]]):
        self.secrets, self.reads = secrets, []
        self.core = self

    def read_namespaced_secret(self, name, namespace, **_):
        self.reads.append((namespace, name))
        return name

    def call(self, what, fn, name, namespace, **kwargs):
        fn(name, namespace, **kwargs)
        if name not in self.secrets:
            raise NotFound(f"{what}: not found")
        body = {"metadata": {"name": name}, "data": {
            k: base64.b64encode(v.encode()).decode() for k, v in self.secrets[name].items()}}
        return type("Answer", (), {"data": json.dumps(body).encode()})()


def test_the_variable_wins_then_the_file(tmp_path):
    path = tmp_path / "db"
    path.write_text(VALUE + "\n")  # as `kubectl create secret --from-file` or echo leaves it
    both = {"KESTRA_OPS_DB_PASSWORD": "from-var", "KESTRA_OPS_DB_PASSWORD_FILE": str(path)}
    assert creds.Resolver(environ=both).get(creds.DB_PASSWORD) == creds.Found(
        "from-var", "environment")
    found = creds.Resolver(environ={"KESTRA_OPS_DB_PASSWORD_FILE": str(path)}).get(
        creds.DB_PASSWORD)
    assert found == creds.Found(VALUE, f"file {path}")  # one trailing newline dropped
    assert creds.Resolver(environ={}).get(creds.DB_PASSWORD) == creds.Found(
        None, None, "KESTRA_OPS_DB_PASSWORD is not set")
    assert creds.Resolver(environ={}).get(creds.DB_PASSWORD, given="flag-value").source == "flag"


def test_an_unreadable_file_is_an_error_never_skipped(tmp_path):
    missing = tmp_path / "nope"
    resolver = creds.Resolver(environ={"KESTRA_OPS_MINIO_SECRET_KEY_FILE": str(missing)})
    with pytest.raises(ConfigError) as err:
        resolver.get(creds.MINIO_SECRET_KEY)
    assert err.value.exit_code == 2
    assert str(err.value) == (f"KESTRA_OPS_MINIO_SECRET_KEY_FILE: cannot read {missing}: No such "
                              "file or directory")


def test_the_secret_is_read_only_with_a_cluster_connection():
    values = {"existingSecrets": {"basicAuth": {"name": "kestra-login", "passwordKey": "pw"}}}
    kube = SecretKube({"kestra-login": {"pw": VALUE}})
    without = creds.Resolver(environ={}, values=values).get(creds.BASIC_AUTH_PASSWORD)
    assert without.value is None and kube.reads == []
    found = creds.Resolver(environ={}, values=values, kube=lambda: kube,
                           namespace="ns").get(creds.BASIC_AUTH_PASSWORD)
    assert found == creds.Found(VALUE, "secret kestra-login") and kube.reads == [
        ("ns", "kestra-login")]
    # the variable comes first: the cluster is not asked
    kube.reads.clear()
    creds.Resolver(environ={"KESTRA_OPS_BASIC_AUTH_PASSWORD": "x"}, values=values,
                   kube=kube, namespace="ns").get(creds.BASIC_AUTH_PASSWORD)
    assert kube.reads == []


def test_why_a_secret_could_not_be_used_names_it_never_a_value():
    kube = SecretKube({"kestra-basic-auth": {"other": VALUE}})
    absent = creds.Resolver(environ={}, values={}, kube=SecretKube({}), namespace="ns").get(
        creds.BASIC_AUTH_PASSWORD)  # values name none: the chart's default Secret
    assert absent.why == ("KESTRA_OPS_BASIC_AUTH_PASSWORD is not set and secret "
                          "kestra-basic-auth: not found")
    no_key = creds.Resolver(environ={}, values={}, kube=kube, namespace="ns").get(
        creds.BASIC_AUTH_PASSWORD)
    assert no_key.why == ("KESTRA_OPS_BASIC_AUTH_PASSWORD is not set and secret "
                          "kestra-basic-auth has no key 'password' "
                          "(existingSecrets.basicAuth.passwordKey)")
    assert VALUE not in absent.why + no_key.why


def test_the_username_comes_from_values_unless_a_placeholder():
    def user(values, environ=None):
        return creds.Resolver(environ=environ or {}, values=values).get(
            creds.BASIC_AUTH_USERNAME)

    server = {"kestra": {"server": {"basic-auth": {"username": "ops@example.com"}}}}
    assert user(server) == creds.Found("ops@example.com", "values")
    assert user(server, {"KESTRA_OPS_BASIC_AUTH_USERNAME": "me@example.com"}).value == \
        "me@example.com"
    placeholder = {"kestra": {"server": {"basic-auth": {"username": "${KESTRA_USER}"}}}}
    assert user(placeholder).why == ("KESTRA_OPS_BASIC_AUTH_USERNAME is not set and "
                                     "kestra.server.basic-auth.username in values is a "
                                     "placeholder")
    assert user({}).why == ("KESTRA_OPS_BASIC_AUTH_USERNAME is not set and values carry no "
                            "kestra.server.basic-auth.username")


def test_minio_keys_and_root_from_files(tmp_path):
    (tmp_path / "a").write_text("bucket-key")
    (tmp_path / "r").write_text("root-password")
    resolver = creds.Resolver(environ={
        "KESTRA_OPS_MINIO_ACCESS_KEY_FILE": str(tmp_path / "a"),
        "KESTRA_OPS_MINIO_SECRET_KEY": "bucket-secret",
        "KESTRA_OPS_MINIO_ROOT_USER": "root",
        "KESTRA_OPS_MINIO_ROOT_PASSWORD_FILE": str(tmp_path / "r")})
    assert creds.minio_key(resolver) == ("bucket-key", "bucket-secret", "")
    assert creds.minio_root(resolver) == ("root", "root-password", "")
    only_bucket = creds.Resolver(environ={"KESTRA_OPS_MINIO_ACCESS_KEY": "k",
                                          "KESTRA_OPS_MINIO_SECRET_KEY": "s"})
    assert "never used as root" in creds.minio_root(only_bucket)[2]
    assert creds.minio_key(creds.Resolver(environ={"KESTRA_OPS_MINIO_ACCESS_KEY": "k"}))[2] == \
        "no MinIO credentials (KESTRA_OPS_MINIO_SECRET_KEY not set)"


def test_a_root_key_given_as_a_file_is_still_refused(tmp_path):
    (tmp_path / "root").write_text("Cluster-Root-7\n")
    environ = {"KESTRA_OPS_MINIO_ROOT_USER_FILE": str(tmp_path / "root")}
    assert creds.root_key_problems({"KESTRA_OPS_MINIO_ACCESS_KEY": "Cluster-Root-7"},
                                   environ) == [
        "KESTRA_OPS_MINIO_ACCESS_KEY is the MinIO root user (KESTRA_OPS_MINIO_ROOT_USER)"]


def test_database_url_takes_the_password_from_the_credential(tmp_path):
    (tmp_path / "pw").write_text("s3cret/pw")
    url = creds.database_url("postgresql://kestra@db:5432/kestra",
                             environ={"KESTRA_OPS_DB_PASSWORD_FILE": str(tmp_path / "pw")})
    assert (url.url, url.password) == ("postgresql://kestra@db:5432/kestra", "s3cret/pw")
    inline = creds.database_url("postgresql://kestra:inline@db/kestra",
                                environ={"KESTRA_OPS_DB_PASSWORD": "ignored"})
    assert inline.password == "inline"
    with pytest.raises(InvalidInput, match="no database: pass --database-url or set "
                                           "KESTRA_OPS_DATABASE_URL"):
        creds.database_url(None, environ={})


def test_storage_is_wired_from_the_resolved_key(tmp_path):
    from kestra_ops.wiring import storage_for_env

    (tmp_path / "s").write_text("bucket-secret\n")
    env = Environment(name="dev", root=tmp_path, minio_endpoint="127.0.0.1:9",
                      minio_bucket="kestra-dev", minio_secure=False)
    storage, why = storage_for_env(env, environ={
        "KESTRA_OPS_MINIO_ACCESS_KEY": "bucket-key",
        "KESTRA_OPS_MINIO_SECRET_KEY_FILE": str(tmp_path / "s")})
    assert why == "" and storage.url == "http://127.0.0.1:9"
    none, why = storage_for_env(env, environ={})
    assert none is None and why == ("no MinIO credentials (KESTRA_OPS_MINIO_ACCESS_KEY and "
                                    "KESTRA_OPS_MINIO_SECRET_KEY not set)")


def test_every_secret_credential_names_its_place_in_existing_secrets():
    assert [(c.variable, c.secret) for c in creds.IN_SECRETS] == [
        ("KESTRA_OPS_DB_PASSWORD", ("database", "passwordKey")),
        ("KESTRA_OPS_MINIO_ACCESS_KEY", ("minio", "accessKeyKey")),
        ("KESTRA_OPS_MINIO_SECRET_KEY", ("minio", "secretKeyKey")),
        ("KESTRA_OPS_BASIC_AUTH_PASSWORD", ("basicAuth", "passwordKey")),
        ("KESTRA_OPS_ENCRYPTION_KEY", ("encryption", "key"))]


def test_a_value_given_by_file_is_masked_in_outside_text_like_a_variable(tmp_path):
    from kestra_ops.redact import environment_secrets, mask_line

    (tmp_path / "pw").write_text(VALUE + "\n")
    secrets = environment_secrets({"KESTRA_OPS_DB_PASSWORD_FILE": str(tmp_path / "pw"),
                                   "KESTRA_OPS_MINIO_SECRET_KEY": "minio-Secret-5be0"})
    line = f"connect failed for kestra:{VALUE}@db with key minio-Secret-5be0"
    masked = mask_line(line, secrets)
    assert VALUE not in masked and "minio-Secret-5be0" not in masked


@pytest.mark.parametrize("text", ["postgresql://kestra:Zq9Secret@[bad/kestra",
                                  "postgresql://[::1/kestra?password=Zq9Secret"])
def test_a_database_url_that_is_not_a_url_is_invalid_input_never_echoed(text):
    from kestra_ops.credentials import database_url
    from kestra_ops.errors import InvalidInput

    with pytest.raises(InvalidInput) as err:
        database_url(text, environ={})
    assert "Zq9Secret" not in str(err.value) and "not a URL" in str(err.value)
