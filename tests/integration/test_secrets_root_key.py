"""secrets apply refuses a MinIO root key (exit 2, one line, nothing read or written, the value
never shown), whichever variable holds it and however it was entered. The same on the real
control plane: tests/e2e/test_minio_e2e.py."""

from __future__ import annotations

import pytest

from kestra_ops.errors import InvalidInput
from kestra_ops.settings import load_config
from kestra_ops.workflows.secrets import apply_secrets, root_key_problems
from tests.integration.test_secrets_apply import (GOOD, NS, assert_no_value_leaked, changes,
                                                  invoke, project, writes)  # noqa: F401

ROOT_USER, ROOT_PASSWORD = "cluster-root-7", "Cluster-Root-Passw0rd"
ACCESS, SECRET = "KESTRA_OPS_MINIO_ACCESS_KEY", "KESTRA_OPS_MINIO_SECRET_KEY"
CASES = {  # name: (variables set on top of GOOD, the message's part)
    "access key = KESTRA_OPS_MINIO_ROOT_USER": (
        {"KESTRA_OPS_MINIO_ROOT_USER": ROOT_USER, ACCESS: ROOT_USER},
        f"{ACCESS} is the MinIO root user (KESTRA_OPS_MINIO_ROOT_USER)"),
    "secret key = KESTRA_OPS_MINIO_ROOT_PASSWORD": (
        {"KESTRA_OPS_MINIO_ROOT_PASSWORD": ROOT_PASSWORD, SECRET: ROOT_PASSWORD},
        f"{SECRET} is the MinIO root password (KESTRA_OPS_MINIO_ROOT_PASSWORD)"),
    "both": (
        {"KESTRA_OPS_MINIO_ROOT_USER": ROOT_USER, "KESTRA_OPS_MINIO_ROOT_PASSWORD": ROOT_PASSWORD,
         ACCESS: ROOT_USER, SECRET: ROOT_PASSWORD},
        f"{ACCESS} is the MinIO root user (KESTRA_OPS_MINIO_ROOT_USER); {SECRET} is the MinIO "
        "root password (KESTRA_OPS_MINIO_ROOT_PASSWORD)"),
    "access key = MinIO's MINIO_ROOT_USER": (
        {"MINIO_ROOT_USER": ROOT_USER, ACCESS: ROOT_USER},
        f"{ACCESS} is the MinIO root user (MINIO_ROOT_USER)"),
    "MinIO's default root user": ({ACCESS: "minioadmin"}, f"{ACCESS} is MinIO's default root "
                                                           "user"),
}


@pytest.fixture
def clean_root(monkeypatch):
    for name in ("KESTRA_OPS_MINIO_ROOT_USER", "KESTRA_OPS_MINIO_ROOT_PASSWORD",
                 "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dry_run", [False, True], ids=["apply", "dry-run"])
def test_a_root_key_is_refused_before_the_cluster_is_asked(project, fake_kube, clean_root,
                                                           monkeypatch, case, dry_run):
    variables, why = CASES[case]
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    result = invoke(project, "--yes", *(["--dry-run"] if dry_run else []))
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr == (f"error: refusing to write the Secrets: {why}: Kestra needs a "
                             "bucket-scoped key (`kestra-ops minio setup` creates one); "
                             "nothing was written\n")
    assert fake_kube.requests == [] and changes(project) == []
    for value in (ROOT_USER, ROOT_PASSWORD, "minioadmin"):
        assert value not in result.output


def test_a_root_key_typed_at_the_prompt_is_refused(project, fake_kube, clean_root, monkeypatch):
    monkeypatch.setenv("KESTRA_OPS_MINIO_ROOT_USER", ROOT_USER)
    monkeypatch.delenv(ACCESS)
    env = load_config(project / "kestra-ops.yaml").environment("dev")
    with pytest.raises(InvalidInput, match=f"{ACCESS} is the MinIO root user") as caught:
        apply_secrets(env, prompt=lambda spec: ROOT_USER)
    assert ROOT_USER not in str(caught.value)
    assert writes(fake_kube) == []


def test_a_bucket_key_beside_root_variables_is_written(project, fake_kube, clean_root,
                                                       monkeypatch):
    monkeypatch.setenv("KESTRA_OPS_MINIO_ROOT_USER", ROOT_USER)
    monkeypatch.setenv("KESTRA_OPS_MINIO_ROOT_PASSWORD", ROOT_PASSWORD)
    result = invoke(project, "--yes")
    assert result.exit_code == 0, result.output
    assert fake_kube.store.get("secrets", NS, "kestra-minio") is not None
    assert_no_value_leaked(result.output)


def test_root_key_problems_compare_whole_values_only():
    environ = {"KESTRA_OPS_MINIO_ROOT_USER": ROOT_USER}
    assert root_key_problems({ACCESS: ROOT_USER + "x"}, environ) == []
    assert root_key_problems({ACCESS: ROOT_USER[:-1]}, environ) == []
    assert root_key_problems({ACCESS: ROOT_USER.upper()}, environ) == []
    assert root_key_problems({ACCESS: ""}, {"KESTRA_OPS_MINIO_ROOT_USER": ""}) == []
    assert root_key_problems({ACCESS: ROOT_USER}, environ) == [
        f"{ACCESS} is the MinIO root user (KESTRA_OPS_MINIO_ROOT_USER)"]
