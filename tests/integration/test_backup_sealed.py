"""Sealed Secrets in backup sets, against a real S3 server (SeaweedFS) and the fake Kubernetes
API: secrets.age opens with the identity and holds the encryption key; the bucket never holds a
plaintext value; verify with a wrong identity or a flipped byte fails naming secrets.age; no
recipients -> a complete set that says so, verify warns; keygen; no value in any output."""

from __future__ import annotations

import base64
import io
import json
import os
import textwrap
import time

import pytest

from tests.fakes.seaweed import seaweed  # noqa: F401 - fixture: the process's SeaweedFS
from tests.integration.backup_support import kestra  # noqa: F401 - fixture
from tests.helpers_configmap import ROOT, project, run  # noqa: F401 - fixture and helper

NS = "hyperplane-kestra"
BUCKET = "kestra-dev"
ENCRYPTION_KEY = base64.b64encode(bytes(range(100, 132))).decode()
VALUES = {"kestra-postgres": {"password": "db-Pass-7f3a9c-sealed"},
          "kestra-minio": {"access-key": "kestra-dev-key-sealed-41",
                           "secret-key": "minio-Secret-sealed-5be0d2e1"},
          "kestra-basic-auth": {"password": "Basic-Auth-sealed-9q2w"},
          "kestra-encryption": {"encryption-key": ENCRYPTION_KEY}}
PLAIN = [v for data in VALUES.values() for v in data.values()]


def identity_pair() -> tuple[str, str]:
    import pyrage

    ident = pyrage.x25519.Identity.generate()
    return str(ident), str(ident.to_public())


def write_config(root, recipients: list[str] | None) -> None:
    extra = f", recipients: [{', '.join(recipients)}]" if recipients else ""
    (root / "kestra-ops.yaml").write_text(textwrap.dedent(f"""\
        defaults:
          chart: {ROOT / 'charts' / 'kestra'}
        environments:
          dev:
            minio: {{bucket: {BUCKET}}}
            backup: {{bucket: {BUCKET}{extra}}}
            values: [values/base.yaml, values/dev.yaml]
        """))


@pytest.fixture
def env(project, seaweed, fake_kube, kestra, monkeypatch, tmp_path):  # noqa: F811
    """(project, identity file, public key): the env's Secrets in the fake cluster, bucket
    kestra-dev on SeaweedFS, recipients = the public key."""
    seaweed.remove_bucket(BUCKET)
    seaweed.client().make_bucket(BUCKET)
    for var, value in {"KESTRA_OPS_MINIO_ENDPOINT": seaweed.endpoint,
                       "KESTRA_OPS_MINIO_SECURE": "false",
                       "KESTRA_OPS_MINIO_ACCESS_KEY": seaweed.root_user,
                       "KESTRA_OPS_MINIO_SECRET_KEY": seaweed.root_password,
                       # backup.bucket is Kestra's here: the backup key is the same identity
                       "KESTRA_OPS_BACKUP_ACCESS_KEY": seaweed.root_user,
                       "KESTRA_OPS_BACKUP_SECRET_KEY": seaweed.root_password,
                       "KESTRA_OPS_KESTRA_URL": kestra.url,
                       "KESTRA_OPS_BASIC_AUTH_USERNAME": kestra.username,
                       "KESTRA_OPS_BASIC_AUTH_PASSWORD": kestra.password}.items():
        monkeypatch.setenv(var, value)
    for name, data in VALUES.items():
        fake_kube.seed({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                        "metadata": {"name": name, "namespace": NS},
                        "data": {k: base64.b64encode(v.encode()).decode()
                                 for k, v in data.items()}}, namespace=NS)
    secret, public = identity_pair()
    ident = tmp_path / "backup.agekey"
    ident.write_text(f"# test identity\n{secret}\n")
    ident.chmod(0o600)
    write_config(project, [public])
    yield project, ident, public
    seaweed.remove_bucket(BUCKET)


def objects(seaweed) -> dict[str, bytes]:  # noqa: F811
    client = seaweed.client()
    return {o.object_name: client.get_object(BUCKET, o.object_name).read()
            for o in client.list_objects(BUCKET, prefix="backups/", recursive=True)}


def backup(root, *args) -> tuple[dict, str]:
    result = run(root, "backup", "run", "--env", "dev", "--what", "flows,config,secrets",
                 "--output", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.output


def no_plaintext(*texts: str) -> None:
    for text in texts:
        for value in PLAIN:
            assert value not in text
            assert base64.b64encode(value.encode()).decode() not in text


def test_sealed_set_opens_with_the_identity_and_the_bucket_holds_no_plaintext(env, seaweed):
    import pyrage

    root, ident, public = env
    data, output = backup(root)
    name = data["set"]
    entry = data["manifest"]["secrets"]
    assert entry["sealed"] is True and entry["recipients"] == [public]
    assert entry["secrets"] == ["kestra-postgres", "kestra-minio", "kestra-basic-auth",
                                "kestra-encryption"]
    assert entry["keys"]["kestra-encryption"] == ["encryption-key"]
    stored = objects(seaweed)
    sealed = stored[f"backups/dev/{name}/secrets.age"]
    assert sealed.startswith(b"age-encryption.org/v1\n")
    assert (entry["size"], data["manifest"]["artefacts"]["secrets.age"]["size"]) == (
        len(sealed), len(sealed))
    # the identity opens it; the encryption key (and every other value) is inside
    ident_key = pyrage.x25519.Identity.from_str(ident.read_text().split()[-1])
    doc = json.loads(pyrage.decrypt(sealed, [ident_key]))
    assert doc["version"] == 1 and doc["namespace"] == NS
    assert base64.b64decode(doc["secrets"]["kestra-encryption"]["data"]["encryption-key"]
                            ).decode() == ENCRYPTION_KEY
    assert {n: {k: base64.b64decode(v).decode() for k, v in s["data"].items()}
            for n, s in doc["secrets"].items()} == VALUES
    # no object in the bucket holds a value, plain or base64
    for key, body in stored.items():
        for value in PLAIN:
            assert value.encode() not in body, key
            assert base64.b64encode(value.encode()) not in body, key
    no_plaintext(output)
    assert not data["warnings"]


def verify(root, name, *args):
    result = run(root, "backup", "verify", "--env", "dev", name, "--output", "json", *args)
    return result, (json.loads(result.stdout) if result.stdout.startswith("{") else None)


def checks(report) -> dict[str, tuple[str, str]]:
    return {c["id"]: (c["status"], c["reason"]) for c in report["checks"]}


def test_verify_opens_with_the_identity_and_fails_with_another(env, seaweed, tmp_path):
    root, ident, _public = env
    data, _ = backup(root)
    name = data["set"]
    plain, report = verify(root, name)
    assert plain.exit_code == 0, plain.output
    status, reason = checks(report)["secrets.age"]
    assert status == "pass" and "sealed secrets not opened (no --identity)" in reason
    opened, report = verify(root, name, "--identity", str(ident))
    assert opened.exit_code == 0, opened.output
    status, reason = checks(report)["secrets.age"]
    assert status == "pass" and "4 Secret(s)" in reason and "match the manifest" in reason
    assert not report["warnings"]

    other = tmp_path / "other.agekey"
    other.write_text(identity_pair()[0] + "\n")
    other.chmod(0o600)
    wrong, report = verify(root, name, "--identity", str(other))
    assert wrong.exit_code == 1
    status, reason = checks(report)["secrets.age"]
    assert status == "fail" and "not one of its recipients" in reason
    assert report["message"].startswith(f"verify dev {name}: FAILED: secrets.age: ")
    text = run(root, "backup", "verify", "--env", "dev", name, "--identity", str(other))
    assert text.exit_code == 1 and "Traceback" not in text.output
    assert text.output.rstrip().splitlines()[-1] == (
        f"verify dev {name}: FAILED: secrets.age: {reason}")
    no_plaintext(plain.output, opened.output, wrong.output, text.output)


def test_verify_fails_on_a_flipped_byte_and_on_a_truncated_file(env, seaweed):
    root, ident, _public = env
    data, _ = backup(root)
    name = data["set"]
    key = f"backups/dev/{name}/secrets.age"
    client = seaweed.client()
    sealed = client.get_object(BUCKET, key).read()
    flipped = bytearray(sealed)
    flipped[-20] ^= 0x01
    client.put_object(BUCKET, key, io.BytesIO(bytes(flipped)), len(flipped))
    result, report = verify(root, name, "--identity", str(ident))
    assert result.exit_code == 1
    assert checks(report)["secrets.age"] == ("fail", "does not match its manifest")
    # the manifest made to agree (sha256, size): age's own authentication still refuses it
    import hashlib

    manifest_key = f"backups/dev/{name}/manifest.json"
    manifest = json.loads(client.get_object(BUCKET, manifest_key).read())
    for broken in (bytes(flipped), sealed[:-17]):
        client.put_object(BUCKET, key, io.BytesIO(broken), len(broken))
        for where in (manifest["artefacts"]["secrets.age"], manifest["secrets"]):
            where.update(size=len(broken), sha256=hashlib.sha256(broken).hexdigest())
        body = json.dumps(manifest).encode()
        client.put_object(BUCKET, manifest_key, io.BytesIO(body), len(body))
        result, report = verify(root, name, "--identity", str(ident))
        assert result.exit_code == 1, result.output
        status, reason = checks(report)["secrets.age"]
        assert status == "fail" and "damaged or truncated" in reason, reason
        assert "Traceback" not in result.output


def test_no_recipients_complete_set_says_so_and_verify_warns(env, seaweed):
    root, _ident, _public = env
    write_config(root, None)
    data, output = backup(root)
    assert data["manifest"]["status"] == "complete"
    assert data["manifest"]["secrets"] == {"sealed": False,
                                           "reason": "no backup.recipients in kestra-ops.yaml"}
    assert [w.split(":")[0] for w in data["warnings"]] == ["secrets not included"]
    assert "secrets.age" not in data["manifest"]["artefacts"]
    assert not any(k.endswith("secrets.age") for k in objects(seaweed))
    result, report = verify(root, data["set"])
    assert result.exit_code == 0, result.output
    status, reason = checks(report)["secrets"]
    assert status == "warn" and reason.startswith("secrets not included: no backup.recipients")
    assert report["status"] == "warn"
    time.sleep(1.1)  # a set per second
    text = run(root, "backup", "run", "--env", "dev", "--what", "config,secrets")
    assert text.exit_code == 0 and "secrets not included" in text.output
    no_plaintext(output, result.output, text.output)


def test_a_set_without_the_secrets_component_is_flagged(env, seaweed):
    root, _ident, _public = env
    result = run(root, "backup", "run", "--env", "dev", "--what", "config", "--output", "json")
    assert result.exit_code == 0, result.output
    name = json.loads(result.stdout)["set"]
    verified, report = verify(root, name)
    assert verified.exit_code == 0
    assert checks(report)["secrets"] == ("warn", "secrets not included: not in this set (it "
                                         "included config); restoring it needs the env's "
                                         "Secrets (Kestra's encryption key among them) from "
                                         "elsewhere")


def test_unseal_and_create_secrets_in_a_new_namespace(env, seaweed, fake_kube):
    from kestra_ops.adapters.kube import connect
    from kestra_ops.errors import Conflict, NotFound, OperationFailed
    from kestra_ops.settings import load_config
    from kestra_ops.workflows.backup import sealed
    from kestra_ops.workflows.backup.locations import destination

    root, ident, _public = env
    name = backup(root)[0]["set"]
    environment = load_config(root / "kestra-ops.yaml").environment("dev")
    place = destination(environment)
    storage, bucket = place.storage, place.bucket
    secrets = sealed.unseal(storage, bucket, "dev", "latest", ident)
    assert {n: {k: v.decode() for k, v in s.data.items()} for n, s in secrets.items()} == VALUES
    assert ENCRYPTION_KEY not in repr(secrets)  # the values are not in the repr
    other = ident.parent / "other.agekey"
    other.write_text(identity_pair()[0] + "\n")
    with pytest.raises(OperationFailed, match="secrets.age: cannot be opened: the identity is "
                       "not one of its recipients"):
        sealed.unseal(storage, bucket, "dev", name, other)

    kube = connect(environment)
    try:
        # same data already there: left as is; a missing one: created
        fake_kube.store.delete("secrets", NS, "kestra-encryption")
        assert sealed.create_secrets(kube, NS, secrets) == ["kestra-encryption"]
        live = fake_kube.store.get("secrets", NS, "kestra-encryption")
        assert base64.b64decode(live["data"]["encryption-key"]).decode() == ENCRYPTION_KEY
        assert sealed.create_secrets(kube, NS, secrets) == []
        # a Secret with other data is never overwritten, and nothing else is written
        fake_kube.store.delete("secrets", NS, "kestra-minio")
        changed = dict(live, data={"encryption-key": base64.b64encode(b"other").decode()})
        fake_kube.store.delete("secrets", NS, "kestra-encryption")
        fake_kube.seed(changed, namespace=NS)
        with pytest.raises(Conflict) as err:
            sealed.create_secrets(kube, NS, secrets)
        assert "kestra-encryption" in str(err.value) and "\n" not in str(err.value)
        assert fake_kube.store.get("secrets", NS, "kestra-minio") is None
        no_plaintext(str(err.value))
    finally:
        kube.close()
    # a set without sealed Secrets: unseal says so
    write_config(root, None)
    time.sleep(1.1)
    bare = backup(root)[0]["set"]
    with pytest.raises(NotFound, match=f"backup set {bare} of dev holds no sealed Secrets"):
        sealed.unseal(storage, bucket, "dev", bare, ident)


def test_restore_checks_the_identity_before_any_change(env, seaweed, tmp_path):
    root, ident, _public = env
    name = backup(root)[0]["set"]
    other = tmp_path / "other.agekey"
    other.write_text(identity_pair()[0] + "\n")
    refused = run(root, "backup", "restore", "--env", "dev", name, "--flows", "--yes",
                  "--identity", str(other))
    assert refused.exit_code == 1
    assert "secrets.age: cannot be opened: the identity is not one of its recipients" in \
        refused.output and "nothing changed" in refused.output


def test_identity_files_are_read_with_care(env, seaweed, tmp_path):
    root, ident, _public = env
    name = backup(root)[0]["set"]
    loose = tmp_path / "loose.agekey"
    loose.write_text(ident.read_text())
    loose.chmod(0o644)
    result, report = verify(root, name, "--identity", str(loose))
    assert result.exit_code == 0, result.output
    assert any("readable by group or others" in w for w in report["warnings"])
    link = tmp_path / "link.agekey"
    link.symlink_to(ident)
    fifo = tmp_path / "fifo.agekey"
    os.mkfifo(fifo)
    public = tmp_path / "public.agekey"
    public.write_text(_public + "\n")
    for path, why in ((link, "is a symlink"), (fifo, "FIFO"), (tmp_path / "none", "not found"),
                      (public, "a public key (recipient), not an identity")):
        result = run(root, "backup", "verify", "--env", "dev", name, "--identity", str(path))
        assert result.exit_code == 2 and why in result.output, result.output
        assert "Traceback" not in result.output


def test_keygen_writes_0600_prints_the_public_key_and_never_overwrites(tmp_path):
    import pyrage

    out = tmp_path / "id.agekey"
    result = run(tmp_path, "backup", "keygen", "--out", str(out))
    assert result.exit_code == 0, result.output
    public = result.stdout.strip()
    assert public.startswith("age1") and "\n" not in public
    assert out.stat().st_mode & 0o777 == 0o600
    secret = [ln for ln in out.read_text().splitlines() if ln.startswith("AGE-SECRET-KEY-1")]
    assert len(secret) == 1 and secret[0] not in result.output
    assert str(pyrage.x25519.Identity.from_str(secret[0]).to_public()) == public
    before = out.read_bytes()
    again = run(tmp_path, "backup", "keygen", "--out", str(out))
    assert again.exit_code == 2 and "refusing to overwrite" in again.output
    assert out.read_bytes() == before
    link = tmp_path / "link.agekey"
    link.symlink_to(tmp_path / "target")
    linked = run(tmp_path, "backup", "keygen", "--out", str(link))
    assert linked.exit_code == 2 and "symbolic link" in linked.output
    assert not (tmp_path / "target").exists()
    as_json = run(tmp_path, "backup", "keygen", "--out", str(tmp_path / "j.agekey"),
                  "--output", "json")
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout)["recipient"].startswith("age1")
    assert "AGE-SECRET-KEY" not in as_json.output


def test_the_backup_cronjob_may_read_every_secret_it_seals():
    """The chart's Role lets the nightly backup get exactly the Secrets sealed into the set:
    existingSecrets and backup.existingSecret (production has the CronJob on)."""
    from kestra_ops.values.merge import load_layers
    from kestra_ops.workflows.backup.sealed import secret_names
    from kestra_ops.workflows.deploy.chart_lint import lint_chart
    from tests.integration.test_chart_lint import env as chart_env

    environment = chart_env("production")
    [role] = [m.doc for m in lint_chart(environment).manifests if m.name == "Role/kestra-backup"]
    [rule] = [r for r in role["rules"] if r["resources"] == ["secrets"]]
    names = secret_names(load_layers(environment.values_paths).plain)
    assert "kestra-backup" in names and "kestra-encryption" in names
    assert sorted(rule["resourceNames"]) == sorted(names) and rule["verbs"] == ["get"]


def test_a_manifest_that_hides_secrets_age_fails_verify(env, seaweed):
    root, ident, _public = env
    name = backup(root)[0]["set"]
    client = seaweed.client()
    manifest_key = f"backups/dev/{name}/manifest.json"
    manifest = json.loads(client.get_object(BUCKET, manifest_key).read())
    del manifest["artefacts"]["secrets.age"]  # sealed: true, but nothing left to check
    body = json.dumps(manifest).encode()
    client.put_object(BUCKET, manifest_key, io.BytesIO(body), len(body))
    result, report = verify(root, name, "--identity", str(ident))
    assert result.exit_code == 1, result.output
    assert checks(report)["secrets"] == ("fail", "the manifest says the Secrets are sealed but "
                                         "lists no secrets.age")
