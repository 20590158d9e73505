"""kestra-ops preflight against the fake Kubernetes API, a real S3 server (moto) and a scripted
helm: all pass, missing RBAC named (nothing written), API unreachable, missing bucket, a release
stuck in pending-upgrade."""

from __future__ import annotations

import json
import shutil
import socket
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from kestra_ops.cli import cli
from kestra_ops.settings import load_config
from kestra_ops.workflows.deploy.preflight import check_bucket_exists, required_permissions

ROOT = Path(__file__).resolve().parents[2]
NS = "hyperplane-kestra"
DEPLOYED = [{"revision": 1, "updated": "2026-11-20T10:00:00Z", "status": "superseded",
             "chart": "kestra-0.1.0", "app_version": "1.3.2", "description": "Install complete"},
            {"revision": 2, "updated": "2026-11-21T10:00:00Z", "status": "deployed",
             "chart": "kestra-0.1.0", "app_version": "1.3.2", "description": "Upgrade complete"}]


def write_project(root: Path, *, minio_endpoint: str | None) -> Path:
    """kestra-ops.yaml in ``root`` (the chart by absolute path, the values copied there)."""
    (root / "values").mkdir(exist_ok=True)
    for name in ("base.yaml", "dev.yaml"):
        shutil.copy(ROOT / "values" / name, root / "values" / name)
    minio = f"minio: {{endpoint: '{minio_endpoint}', secure: false}}" if minio_endpoint else ""
    (root / "kestra-ops.yaml").write_text(textwrap.dedent(f"""\
        defaults:
          chart: {ROOT / 'charts' / 'kestra'}
          {minio}
        environments:
          dev:
            minio: {{bucket: kestra-dev}}
            values: [values/base.yaml, values/dev.yaml]
        """))
    return root / "kestra-ops.yaml"


def write_helm(root: Path, history: list | None) -> Path:
    """A stand-in helm: records its arguments; `history` prints ``history`` (None: no release)."""
    script = root / "helm"
    (root / "helm.history").write_text(json.dumps(history) if history is not None else "")
    script.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo "$@" >> "{root}/helm.calls"
        if [ "$1" = history ]; then
          if [ -s "{root}/helm.history" ]; then cat "{root}/helm.history"; exit 0; fi
          echo 'Error: release: not found' >&2; exit 1
        fi
        echo "unexpected helm call: $*" >&2; exit 1
        """))
    script.chmod(0o755)
    return script


@pytest.fixture
def project(tmp_path, fake_kube, s3, monkeypatch):
    """A dev environment: fake cluster, S3 server with credentials, helm showing a deployed
    release. Tests adjust what they break."""
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    # the kubernetes client reads $KUBECONFIG once, at import: name this test's file explicitly
    monkeypatch.setenv("KESTRA_OPS_KUBECONFIG", str(fake_kube.kubeconfig))
    monkeypatch.delenv("KESTRA_OPS_MINIO_ENDPOINT", raising=False)
    monkeypatch.delenv("KESTRA_OPS_NAMESPACE", raising=False)
    monkeypatch.setenv("KESTRA_OPS_HELM", str(write_helm(tmp_path, DEPLOYED)))
    config = write_project(tmp_path, minio_endpoint=s3.endpoint)
    s3.create_bucket("kestra-dev")
    return config


def invoke(config: Path, *args: str):
    return CliRunner().invoke(cli, ["--config", str(config), "preflight", "--env", "dev", *args])


def writes(fake_kube) -> list:
    """Every request that would change the cluster (an SSAR is a question, not a change)."""
    return [r for r in fake_kube.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")
            and "selfsubjectaccessreviews" not in r.path]


def test_all_checks_pass(project, fake_kube, tmp_path):
    result = invoke(project)
    assert result.exit_code == 0, result.output
    for name in ("api-server", "namespace", "rbac", "bucket", "release"):
        assert f"PASS  {name}" in result.output
    assert "Kubernetes v1.31.4" in result.output
    assert "revision 2 deployed" in result.output
    assert result.output.rstrip().endswith("preflight dev: ok")
    ssars = fake_kube.requests_matching("POST", "selfsubjectaccessreviews")
    perms, _ = required_permissions(ROOT / "charts" / "kestra")
    assert len(ssars) == len(perms) > 60
    asked = {(r.body["spec"]["resourceAttributes"]["verb"],
              r.body["spec"]["resourceAttributes"]["resource"]) for r in ssars}
    assert {("create", "secrets"), ("update", "secrets"), ("patch", "deployments"),
            ("delete", "rolebindings"), ("create", "leases")} <= asked
    assert all(r.body["spec"]["resourceAttributes"]["namespace"] == NS for r in ssars)
    assert writes(fake_kube) == []
    calls = (tmp_path / "helm.calls").read_text().split()  # through the Helm adapter
    assert calls[:8] == ["history", "kestra", "--output", "json", "--max", "256", "--namespace",
                         NS]
    assert calls[8:] == ["--kubeconfig", str(fake_kube.kubeconfig), "--kube-context", "fake"]


def test_json_output(project):
    result = invoke(project, "--output", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["missing_permissions"] == []
    assert (data["command"], data["status"], data["exit_code"]) == ("preflight", "pass", 0)
    assert [c["name"] for c in data["checks"]] == ["api-server", "namespace", "rbac", "bucket",
                                                  "release"]
    assert [c["id"] for c in data["checks"]] == [c["name"] for c in data["checks"]]
    assert all(c["code"] == "" for c in data["checks"])
    assert {c["status"] for c in data["checks"]} == {"pass"}


def test_missing_rbac_is_named_and_nothing_is_written(project, fake_kube):
    fake_kube.deny("create", "secrets", NS)
    fake_kube.deny("patch", "deployments.apps", NS)
    fake_kube.deny("get", "pods/log", NS)
    fake_kube.deny("create", "secrets", "other-namespace")  # not ours: must not be reported
    result = invoke(project)
    assert result.exit_code == 1, result.output
    assert "FAIL  rbac" in result.output and "3 of " in result.output
    lines = [line.strip() for line in result.stdout.splitlines()]
    for missing in ("cannot create secrets in hyperplane-kestra",
                    "cannot patch deployments.apps in hyperplane-kestra",
                    "cannot get pods/log in hyperplane-kestra"):
        assert missing in lines  # each on its own line
    assert result.output.rstrip().endswith("preflight dev: FAILED")
    data = json.loads(invoke(project, "-o", "json").stdout)
    assert data["missing_permissions"] == ["cannot patch deployments.apps in hyperplane-kestra",
                                           "cannot get pods/log in hyperplane-kestra",
                                           "cannot create secrets in hyperplane-kestra"]
    assert writes(fake_kube) == []
    assert fake_kube.store.list("secrets", NS) == []


def test_api_unreachable_is_one_line(project, fake_kube):
    fake_kube.stop()
    result = invoke(project)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    api = [ln for ln in result.output.splitlines() if "api-server" in ln]
    assert len(api) == 1 and "FAIL" in api[0] and "cannot reach the Kubernetes API" in api[0]
    assert "WARN  rbac" in result.output and "skipped" in result.output
    assert "PASS  bucket" in result.output  # the checks that need no cluster still ran


def test_missing_bucket_fails(project, s3):
    s3.reset()  # no bucket at all
    result = invoke(project)
    assert result.exit_code == 1, result.output
    assert "FAIL  bucket" in result.output
    assert "bucket kestra-dev does not exist" in result.output


def test_bucket_skipped_without_credentials(project, monkeypatch):
    monkeypatch.delenv("KESTRA_OPS_MINIO_SECRET_KEY")
    result = invoke(project)
    assert result.exit_code == 0, result.output
    assert "WARN  bucket" in result.output
    assert "KESTRA_OPS_MINIO_SECRET_KEY not set" in result.output


def test_bucket_skipped_without_endpoint(tmp_path, fake_kube, s3, monkeypatch):
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("KESTRA_OPS_MINIO_ENDPOINT", raising=False)
    env = load_config(write_project(tmp_path, minio_endpoint=None)).environment("dev")
    check = check_bucket_exists(env)
    assert check.status == "warn" and "no MinIO endpoint" in check.reason


def test_storage_unreachable_is_a_failed_check(tmp_path, s3, monkeypatch):
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = load_config(write_project(tmp_path, minio_endpoint=f"127.0.0.1:{port}")) \
        .environment("dev")
    bucket = check_bucket_exists(env)
    assert bucket.status == "fail"
    assert bucket.reason.startswith(f"cannot reach object storage at http://127.0.0.1:{port}")
    assert s3.secret_key not in bucket.reason


def test_pending_upgrade_fails(project, tmp_path):
    write_helm(tmp_path, DEPLOYED + [{"revision": 3, "updated": "2026-11-22T10:00:00Z",
                                      "status": "pending-upgrade", "chart": "kestra-0.1.0",
                                      "app_version": "1.3.2",
                                      "description": "Preparing upgrade"}])
    result = invoke(project)
    assert result.exit_code == 1, result.output
    assert "FAIL  release" in result.output
    assert "stuck in pending-upgrade at revision 3" in result.output
    data = json.loads(invoke(project, "-o", "json").stdout)
    release = next(c for c in data["checks"] if c["name"] == "release")
    assert (release["status"], release["code"]) == ("fail", "stuck")


def test_first_install_passes(project, tmp_path):
    write_helm(tmp_path, None)
    result = invoke(project)
    assert result.exit_code == 0, result.output
    assert "PASS  release" in result.output and "first install" in result.output


def test_failed_revision_warns_and_helm_errors_fail(project, tmp_path):
    write_helm(tmp_path, [{**DEPLOYED[1], "revision": 3, "status": "failed",
                           "description": "Upgrade failed: timed out"}])
    result = invoke(project)
    assert result.exit_code == 0, result.output
    assert "WARN  release" in result.output and "revision 3 failed" in result.output
    (tmp_path / "helm").write_text("#!/bin/sh\necho 'Error: Kubernetes cluster unreachable' >&2"
                                   "\nexit 1\n")
    result = invoke(project)
    assert result.exit_code == 1
    assert "helm history kestra: Kubernetes cluster unreachable" in result.output


def test_permissions_follow_the_chart(tmp_path):
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "templates" / "a.yaml").write_text(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\n---\nkind: Widget\n"
        "roleRef:\n  kind: Role\n")
    perms, unknown = required_permissions(chart)
    names = {f"{p.verb} {p.qualified}" for p in perms}
    assert {"create ingresses.networking.k8s.io", "delete ingresses.networking.k8s.io",
            "create secrets", "get pods/log", "list events"} <= names
    assert not any("roles" in n for n in names)  # the indented roleRef kind is not a template
    assert unknown == ["Widget"]
    fallback, _ = required_permissions(tmp_path / "no-chart-here")  # our chart's kinds
    assert "create statefulsets.apps" in {f"{p.verb} {p.qualified}" for p in fallback}
    ours, _ = required_permissions(ROOT / "charts" / "kestra")
    ours_names = {f"{p.verb} {p.qualified}" for p in ours}
    assert {"create statefulsets.apps", "update cronjobs.batch", "patch roles.rbac.authorization"
            ".k8s.io", "delete persistentvolumeclaims", "create serviceaccounts"} <= ours_names
