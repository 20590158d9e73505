"""kestra-ops secrets apply against the fake Kubernetes API: create, unchanged, update, rules
checked before any write, missing variables, RBAC, conflicts; no value ever shown or logged."""

from __future__ import annotations

import base64
import json
import re
import shutil
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from kestra_ops.cli import cli
from kestra_ops.errors import Aborted, Conflict
from kestra_ops.settings import load_config
from kestra_ops.workflows.secrets import VARIABLES, apply_secrets

ROOT = Path(__file__).resolve().parents[2]
NS = "hyperplane-kestra"
GOOD = {"KESTRA_OPS_DB_PASSWORD": "db-Pass-7f3a9c",
        "KESTRA_OPS_MINIO_ACCESS_KEY": "kestra-dev-key-41",
        "KESTRA_OPS_MINIO_SECRET_KEY": "minio-Secret-5be0d2e1",
        "KESTRA_OPS_BASIC_AUTH_PASSWORD": "Basic-Auth-9q2w",
        "KESTRA_OPS_ENCRYPTION_KEY": base64.b64encode(bytes(range(32))).decode()}
EXPECTED = {"kestra-postgres": {"password": GOOD["KESTRA_OPS_DB_PASSWORD"]},
            "kestra-minio": {"access-key": GOOD["KESTRA_OPS_MINIO_ACCESS_KEY"],
                             "secret-key": GOOD["KESTRA_OPS_MINIO_SECRET_KEY"]},
            "kestra-basic-auth": {"password": GOOD["KESTRA_OPS_BASIC_AUTH_PASSWORD"]},
            "kestra-encryption": {"encryption-key": GOOD["KESTRA_OPS_ENCRYPTION_KEY"]}}


@pytest.fixture
def project(tmp_path, fake_kube, monkeypatch):
    """A project root in tmp_path (so backups/changes.jsonl lands there), every value set."""
    (tmp_path / "values").mkdir()
    for name in ("base.yaml", "dev.yaml"):
        shutil.copy(ROOT / "values" / name, tmp_path / "values" / name)
    (tmp_path / "kestra-ops.yaml").write_text(textwrap.dedent(f"""\
        defaults: {{chart: {ROOT / 'charts' / 'kestra'}}}
        environments:
          dev: {{values: [values/base.yaml, values/dev.yaml]}}
        """))
    # the kubernetes client reads $KUBECONFIG once, at import: name this test's file explicitly
    monkeypatch.setenv("KESTRA_OPS_KUBECONFIG", str(fake_kube.kubeconfig))
    monkeypatch.delenv("KESTRA_OPS_NAMESPACE", raising=False)
    for name, value in GOOD.items():
        monkeypatch.setenv(name, value)
    return tmp_path


def invoke(root: Path, *args: str):
    return CliRunner().invoke(cli, ["--config", str(root / "kestra-ops.yaml"), "secrets",
                                    "apply", "--env", "dev", *args])


def live(fake_kube, name: str) -> dict:
    return fake_kube.store.get("secrets", NS, name)


def decoded(fake_kube, name: str) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in live(fake_kube, name)["data"].items()}


def writes(fake_kube) -> list:
    return [r for r in fake_kube.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")
            and "selfsubjectaccessreviews" not in r.path]


def changes(root: Path) -> list[dict]:
    path = root / "backups" / "changes.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines()] if path.exists() else []


def row(output: str, action: str, name: str) -> str:
    """The line of Secret ``name`` in the report's table, which must read ``action``."""
    [line] = [ln for ln in output.splitlines() if ln.split()[-1:] != [] and
              re.match(rf"^\s+{action}\s+{name}\s", ln)]
    return line


def assert_no_value_leaked(*texts: str) -> None:
    for text in texts:
        for name, value in GOOD.items():
            assert value not in text, f"the value of {name} leaked"
            assert base64.b64encode(value.encode()).decode() not in text


def test_create_then_unchanged_then_updated(project, fake_kube, monkeypatch):
    first = invoke(project, "--yes")
    assert first.exit_code == 0, first.output
    for name in EXPECTED:
        row(first.stdout, "create", name)
        assert decoded(fake_kube, name) == EXPECTED[name]
        obj = live(fake_kube, name)
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kestra-ops"
        assert obj["type"] == "Opaque"
    assert "access-key: created, secret-key: created" in first.output
    assert first.output.rstrip().endswith("4 created, 0 updated, 0 unchanged")
    log = changes(project)
    assert [(e["action"], e["target"]) for e in log] == [
        ("secret create", f"secret {NS}/{name}") for name in EXPECTED]
    assert log[1]["keys"] == {"access-key": "created", "secret-key": "created"}
    assert log[0]["before"] is None and log[0]["after"] == live(fake_kube, "kestra-postgres")[
        "metadata"]["resourceVersion"]

    count = len(writes(fake_kube))
    again = invoke(project, "--yes")
    assert again.exit_code == 0, again.output
    for name in EXPECTED:
        row(again.stdout, "unchanged", name)
    assert "0 to create, 0 to update, 4 unchanged" in again.output
    assert len(writes(fake_kube)) == count and len(changes(project)) == 4

    before = live(fake_kube, "kestra-minio")["metadata"]["resourceVersion"]
    fake_kube.store.mutate("secrets", NS, "kestra-minio",  # a key someone else added: kept
                           lambda o: o["data"].update(region=base64.b64encode(b"eu").decode()))
    rv_read = live(fake_kube, "kestra-minio")["metadata"]["resourceVersion"]
    monkeypatch.setenv("KESTRA_OPS_MINIO_SECRET_KEY", "minio-Secret-rotated-77")
    third = invoke(project, "--yes", "--output", "json")
    assert third.exit_code == 0, third.output
    data = json.loads(third.stdout)
    minio = next(s for s in data["secrets"] if s["name"] == "kestra-minio")
    assert minio["action"] == "update" and minio["keys"] == {"access-key": "unchanged",
                                                             "secret-key": "updated"}
    assert minio["resource_version"] == rv_read != before
    assert data["written"] == ["kestra-minio"]
    assert decoded(fake_kube, "kestra-minio") == {**EXPECTED["kestra-minio"], "region": "eu",
                                                  "secret-key": "minio-Secret-rotated-77"}
    put = fake_kube.requests_matching("PUT", "/secrets/kestra-minio")[-1]
    assert put.body["metadata"]["resourceVersion"] == rv_read  # written with what was read
    log = changes(project)
    assert len(log) == 5 and log[-1]["action"] == "secret update"
    assert log[-1]["before"] == rv_read and log[-1]["keys"]["secret-key"] == "updated"
    text = (project / "backups" / "changes.jsonl").read_text()
    assert_no_value_leaked(first.output, again.output, third.output, text)
    assert "minio-Secret-rotated-77" not in third.output + text


def test_dry_run_writes_nothing(project, fake_kube):
    result = invoke(project, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "password: created" in row(result.stdout, "would create", "kestra-postgres")
    assert "(dry run: nothing written)" in result.output
    assert writes(fake_kube) == [] and changes(project) == []
    assert_no_value_leaked(result.output)


def test_weak_password_is_refused_before_any_write(project, fake_kube, monkeypatch):
    monkeypatch.setenv("KESTRA_OPS_BASIC_AUTH_PASSWORD", "alllowercase1")
    result = invoke(project, "--yes")
    assert result.exit_code == 2
    assert "KESTRA_OPS_BASIC_AUTH_PASSWORD does not meet Kestra's basic-auth rule" in result.output
    assert "alllowercase1" not in result.output
    assert fake_kube.requests == []  # refused before the cluster was even asked
    assert fake_kube.store.list("secrets", NS) == [] and changes(project) == []


def test_username_not_an_email_is_refused(project, fake_kube):
    with (project / "values" / "dev.yaml").open("a") as fh:
        fh.write("  server:\n    basic-auth:\n      username: admin\n")
    result = invoke(project, "--yes")
    assert result.exit_code == 2, result.output
    assert "kestra.server.basic-auth.username 'admin' is not an e-mail address" in result.output
    assert writes(fake_kube) == []


def test_bad_encryption_key_and_pasted_newline_are_refused(project, fake_kube, monkeypatch):
    monkeypatch.setenv("KESTRA_OPS_ENCRYPTION_KEY", base64.b64encode(b"short").decode())
    monkeypatch.setenv("KESTRA_OPS_DB_PASSWORD", GOOD["KESTRA_OPS_DB_PASSWORD"] + "\n")
    result = invoke(project, "--yes")
    assert result.exit_code == 2
    assert "KESTRA_OPS_ENCRYPTION_KEY must be the base64 of 32 bytes" in result.output
    assert "KESTRA_OPS_DB_PASSWORD has leading/trailing white space" in result.output
    assert writes(fake_kube) == []


def test_missing_variable_without_a_terminal(project, fake_kube, monkeypatch):
    monkeypatch.delenv("KESTRA_OPS_DB_PASSWORD")
    monkeypatch.delenv("KESTRA_OPS_ENCRYPTION_KEY")
    result = invoke(project, "--yes")
    assert result.exit_code == 2
    line = result.output.strip()
    assert line.startswith("error: not set: KESTRA_OPS_DB_PASSWORD (database password), "
                           "KESTRA_OPS_ENCRYPTION_KEY (encryption key)")
    assert "nothing was written" in line and "Traceback" not in result.output
    assert fake_kube.requests == []


def test_no_yes_without_a_terminal_writes_nothing(project, fake_kube):
    result = invoke(project)
    assert result.exit_code == 2
    assert result.stderr == ("error: refusing to write the Secrets without --yes (stdin is not "
                             "a terminal); nothing was changed\n")
    assert writes(fake_kube) == [] and changes(project) == []


def test_missing_rbac_is_named_and_nothing_is_written(project, fake_kube):
    invoke(project, "--yes")  # all four exist
    fake_kube.store.delete("secrets", NS, "kestra-encryption")
    count = len(writes(fake_kube))
    fake_kube.deny("create", "secrets", NS)
    result = invoke(project, "--yes")
    assert result.exit_code == 1
    assert "error: cannot create secrets in hyperplane-kestra: nothing was written" in \
        result.output
    assert len(writes(fake_kube)) == count and len(changes(project)) == 4


def test_prompt_is_used_for_unset_variables(project, fake_kube, monkeypatch):
    monkeypatch.delenv("KESTRA_OPS_BASIC_AUTH_PASSWORD")
    asked = []

    def prompt(spec):
        asked.append((spec.variable, spec.secret, spec.key))
        return "Prompted-Pass-1"

    env = load_config(project / "kestra-ops.yaml").environment("dev")
    result = apply_secrets(env, prompt=prompt)
    assert asked == [("KESTRA_OPS_BASIC_AUTH_PASSWORD", "kestra-basic-auth", "password")]
    assert decoded(fake_kube, "kestra-basic-auth") == {"password": "Prompted-Pass-1"}
    assert result.data["written"] == list(EXPECTED) and result.exit_code == 0
    assert "Prompted-Pass-1" not in json.dumps(result.to_dict()) + repr(result)


def test_declined_writes_nothing(project, fake_kube):
    env = load_config(project / "kestra-ops.yaml").environment("dev")
    with pytest.raises(Aborted, match="no Secret was written"):
        apply_secrets(env, confirm=lambda result: False)
    assert writes(fake_kube) == []


def test_conflict_stops_before_the_rest(project, fake_kube, monkeypatch):
    invoke(project, "--yes")
    monkeypatch.setenv("KESTRA_OPS_DB_PASSWORD", "db-Pass-rotated-1")
    monkeypatch.setenv("KESTRA_OPS_MINIO_SECRET_KEY", "minio-Secret-rotated-2")
    env = load_config(project / "kestra-ops.yaml").environment("dev")

    def someone_else_writes(result):  # between our read and our write
        fake_kube.store.mutate("secrets", NS, "kestra-postgres",
                               lambda o: o["metadata"].setdefault("labels", {}).update(x="y"))
        return True

    with pytest.raises(Conflict) as err:
        apply_secrets(env, confirm=someone_else_writes)
    assert "secret kestra-postgres changed since it was read" in str(err.value)
    assert "already written: none" in str(err.value)
    assert decoded(fake_kube, "kestra-postgres") == EXPECTED["kestra-postgres"]
    assert decoded(fake_kube, "kestra-minio") == EXPECTED["kestra-minio"]  # not written after
    assert len(changes(project)) == 4  # only the first run's creates


def test_variables_are_documented():
    result = CliRunner().invoke(cli, ["secrets", "apply", "--help"])
    assert result.exit_code == 0
    for name in VARIABLES:
        assert name in result.output


def test_a_value_can_come_from_a_file(project, fake_kube, monkeypatch, tmp_path):
    """KESTRA_OPS_<X>_FILE (a mounted secret) stands for the variable; the value is written,
    never shown."""
    path = tmp_path / "db-password"
    path.write_text("db-Pass-from-file-3\n")
    monkeypatch.delenv("KESTRA_OPS_DB_PASSWORD")
    monkeypatch.setenv("KESTRA_OPS_DB_PASSWORD_FILE", str(path))
    result = invoke(project, "--yes")
    assert result.exit_code == 0, result.output
    assert decoded(fake_kube, "kestra-postgres") == {"password": "db-Pass-from-file-3"}
    assert "db-Pass-from-file-3" not in result.output
    monkeypatch.setenv("KESTRA_OPS_DB_PASSWORD_FILE", str(tmp_path / "missing"))
    result = invoke(project, "--yes")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: KESTRA_OPS_DB_PASSWORD_FILE: cannot read ")
