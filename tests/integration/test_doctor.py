"""kestra-ops doctor against the fake Kubernetes API, the fake Kestra server, MinIO's health
endpoints and a stand-in helm: every finding shown appearing, and gone once the cause is fixed."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers_checks import DEP, NS, PG, install  # noqa: F401

MICRONAUT = ("io.micronaut.context.exceptions.NoSuchBeanException: No bean of type "
             "[javax.sql.DataSource] exists for the given qualifier: @Named('postgres').")
PG_AUTH = 'FATAL:  password authentication failed for user "kestra"'


def doctor(install, *args) -> tuple[int, dict]:
    result = install.run("--output", "json", *args, command="doctor")
    assert result.exit_code in (0, 1), result.output
    data = json.loads(result.stdout)
    assert data["exit_code"] == result.exit_code
    return result.exit_code, data


def findings(install, *args) -> dict[str, dict]:
    return {f["id"]: f for f in doctor(install, *args)[1]["findings"]}


def crashloop(install, log: str, deployment: str = DEP, container: str = "kestra") -> str:
    install.kube.controller.set_failure(deployment, "crashloop")
    install.wait_pods(lambda: "CrashLoopBackOff" in json.dumps(install.pod(deployment)["status"]))
    pod = install.pod(deployment)["metadata"]["name"]
    install.kube.store.set_log(NS, pod, container, log, previous=True)
    return pod


def test_healthy_install_has_no_problems(install):
    code, data = doctor(install)
    assert code == 0 and data["findings"] == [] and data["ok"] is True
    assert data["not_checked"] == {}
    looked = " ".join(data["looked_at"])
    for what in ("3 pod(s)", "configmap kestra-config", "permissions", "release",
                 "MinIO health", "Kestra basic-auth state", "blacklist: io.kestra.plugin.docker.*",
                 "0 RUNNING execution(s)"):
        assert what in looked
    text = install.run(command="doctor")
    assert text.exit_code == 0 and text.output.rstrip().endswith("doctor dev: no problems found")


# --------------------------------------------------------------------------- datasource, crashes

def test_crashloop_with_micronaut_datasource_error(install):
    pod = crashloop(install, f"Starting Kestra\n{MICRONAUT}\n\tat io.micronaut.Foo\n")
    found = findings(install)
    ds = found["datasource-missing"]
    assert ds["status"] == "fail" and "datasources.default" in ds["reason"]
    assert any(f"pod {pod} container kestra: CrashLoopBackOff" in e for e in ds["details"])
    assert any("No bean of type [javax.sql.DataSource]" in e for e in ds["details"])
    assert "kestra-ops config patch --env dev" in ds["fix"] and "datasources.default" in ds["fix"]
    assert "crashloop" not in found  # explained: not reported twice
    install.kube.controller.set_failure(DEP, None)
    install.kube.store.delete("pods", NS, pod)
    install.wait_pods(lambda: install.pods(DEP) and all(
        c["ready"] for c in install.pod(DEP)["status"].get("containerStatuses") or [{}]))
    assert "datasource-missing" not in findings(install)


def test_configmap_without_datasources_default(install):
    app = install.application()
    del app["datasources"]["default"]
    install.set_configmap(app)
    ds = findings(install)["datasource-missing"]
    assert ds["details"] == ["configmap kestra-config: application.yml has no "
                              "datasources.default"]
    del app["kestra"]["datasources"]
    install.set_configmap(app)
    found = findings(install)
    assert "kestra.datasources.postgres" in found["configmap-sections"]["reason"]


def test_other_crashloop_and_image_pull(install):
    pod = crashloop(install, "Exception in thread main java.lang.OutOfMemoryError\n")
    loop = findings(install)["crashloop"]
    assert loop["reason"].startswith(f"pod {pod} container kestra: CrashLoopBackOff")
    assert "  | Exception in thread main java.lang.OutOfMemoryError" in loop["details"]
    install.kube.controller.set_failure(DEP, "imagepull")
    install.wait_pods(lambda: "ImagePull" in json.dumps(install.pod(DEP)["status"]))
    found = findings(install)
    assert "crashloop" not in found and "Image" in found["pod-failing"]["reason"]


# --------------------------------------------------------------------------- postgres

def test_postgres_pod_not_ready(install):
    install.kube.controller.set_failure(PG, "never-ready")
    install.wait_pods(lambda: not install.pod(f"{PG}-0")["status"]["containerStatuses"][0]["ready"])
    install.kube.store.set_log(NS, f"{PG}-0", "postgres", "database system is starting up\n")
    pg = findings(install)["postgres-pod"]
    assert pg["reason"] == f"PostgreSQL pod {PG}-0 is not ready"
    assert "not ready: postgres (running, readiness probe failing)" in pg["details"][0]
    assert "  | database system is starting up" in pg["details"]
    install.kube.controller.set_failure(PG, None)
    install.wait_pods(lambda: install.pod(f"{PG}-0")["status"]["containerStatuses"][0]["ready"])
    assert "postgres-pod" not in findings(install)


def test_postgres_password_authentication_failed(install):
    install.kube.store.set_log(NS, f"{PG}-0", "postgres", f"ready\n{PG_AUTH}\n")
    pod = crashloop(install, f"org.postgresql.util.PSQLException: {PG_AUTH}\n")
    found = findings(install)
    auth = found["postgres-auth"]
    assert f"pod {PG}-0 container postgres:" in auth["details"]
    assert f"pod {pod} container kestra:" in auth["details"]
    assert "kestra-ops secrets apply --env dev" in auth["fix"]
    assert "crashloop" not in found and "datasource-missing" not in found


# --------------------------------------------------------------------------- login, rbac, minio

def test_basic_auth_validation_errors_and_wrong_password(install, monkeypatch):
    install.kestra.basic_auth_validation_errors = ["Invalid password for Basic Authentication."]
    auth = findings(install)["basic-auth"]
    assert auth["details"] == ["Invalid password for Basic Authentication."]
    assert "must be an e-mail address" in auth["fix"] and "upper-case" in auth["fix"]
    install.kestra.basic_auth_validation_errors = []
    assert "basic-auth" not in findings(install)
    monkeypatch.setenv("KESTRA_OPS_BASIC_AUTH_PASSWORD", "not-the-Passw0rd")
    code, data = doctor(install)
    auth = next(f for f in data["findings"] if f["id"] == "basic-auth")
    assert "Kestra refused the credentials" in auth["details"][0]
    assert data["not_checked"]["flows"] == "login failed"
    assert "not-the-Passw0rd" not in json.dumps(data)


def test_missing_rbac_permissions(install):
    install.kube.deny("create", "secrets", NS)
    rbac = findings(install)["rbac"]
    assert f"cannot create secrets in {NS}" in rbac["details"]
    assert "kestra-ops preflight --env dev" in rbac["fix"]
    install.kube.allow("create", "secrets", NS)
    assert "rbac" not in findings(install)


@pytest.mark.parametrize("endpoint", ["minio.example.com", "10.1.2.3", "http://minio:9000"])
def test_minio_not_by_cluster_dns(install, endpoint):
    app = install.application()
    app["kestra"]["storage"]["minio"]["endpoint"] = endpoint
    install.set_configmap(app)
    dns = findings(install)["minio-dns"]
    assert f"Kestra reaches MinIO at {endpoint!r}" in dns["reason"]
    assert "svc.cluster.local" in dns["fix"]


def test_minio_health_failing(install):
    install.minio.live = 503
    health = findings(install)["minio-health"]
    assert "HTTP 503" in health["details"][0]
    install.minio.live = 200
    install.minio.cluster = 503
    assert "write quorum" in findings(install)["minio-health"]["details"][0]
    install.minio.cluster = 200
    assert "minio-health" not in findings(install)


# --------------------------------------------------------------------------- flows, executions

NESTED_DOCKER = """\
id: build
namespace: company.team
tasks:
  - id: parallel
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: run
        type: io.kestra.plugin.docker.Run
        containerImage: alpine
errors:
  - id: alert
    type: io.kestra.plugin.core.log.Log
    message: failed
triggers:
  - id: every-hour
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 * * * *"
"""
IN_ERRORS = """\
id: cleanup
namespace: company.team
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hi
errors:
  - id: docker
    type: io.kestra.plugin.docker.Build
"""
CLEAN = """\
id: clean
namespace: company.team
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hi
"""


def test_flows_using_a_blacklisted_plugin_nested(install):
    for source in (NESTED_DOCKER, IN_ERRORS, CLEAN):
        install.kestra.add_flow(source)
    found = findings(install)
    plugin = found["blacklisted-plugin"]
    assert plugin["reason"] == "2 flow(s) use a blacklisted plugin type"
    assert plugin["details"] == [
        "company.team.build: tasks[0].tasks[0].type: io.kestra.plugin.docker.Run "
        "(blacklisted by 'io.kestra.plugin.docker.*')",
        "company.team.cleanup: errors[0].type: io.kestra.plugin.docker.Build "
        "(blacklisted by 'io.kestra.plugin.docker.*')"]
    assert "kestra-ops flows validate" in plugin["fix"]
    app = install.application()
    app["kestra"]["plugins"]["blacklist"] = ["io.kestra.plugin.scripts.*"]
    install.set_configmap(app)  # the live ConfigMap decides
    assert "blacklisted-plugin" not in findings(install)


def test_flow_with_a_type_the_server_does_not_know(install):
    install.kestra.add_flow(CLEAN.replace("io.kestra.plugin.core.log.Log",
                                          "io.kestra.plugin.custom.Thing"))
    install.kestra.add_flow(CLEAN.replace("id: clean", "id: known"))
    assert "unknown-plugin" not in findings(install)
    install.kestra.flow_store.rules.known_plugin_prefixes = ("io.kestra.plugin.core.",)
    unknown = findings(install)["unknown-plugin"]
    assert unknown["reason"] == "1 flow(s) use a plugin type this server does not know"
    assert unknown["details"][0].startswith("company.team.clean: ")
    assert "Invalid type: io.kestra.plugin.custom.Thing" in unknown["details"][0]


def test_executions_stuck_in_running(install):
    old = install.kestra.add_execution("company.team", "etl", "RUNNING", started_ago=3 * 3600)
    install.kestra.add_execution("company.team", "fresh", "RUNNING", started_ago=60)
    install.kestra.add_execution("company.team", "done", "SUCCESS", started_ago=5 * 3600)
    stuck = findings(install)["stuck-executions"]
    assert stuck["status"] == "warn"
    assert stuck["reason"] == "1 execution(s) RUNNING for more than 1h00m"
    assert stuck["details"] == [f"company.team.etl execution {old['id']} RUNNING for 3h00m"]
    assert "stuck-executions" not in findings(install, "--stuck-after", "4h")
    assert len(findings(install, "--stuck-after", "30s")["stuck-executions"]["details"]) == 2


# --------------------------------------------------------------------------- release, kestra

def test_release_stuck_in_pending(install):
    install.helm.state.seed(["pending-upgrade"])
    pending = findings(install)["release-pending"]
    assert pending["reason"] == "the Helm release is stuck in pending-* and blocks the next " \
                                 "upgrade"
    assert "stuck in pending-upgrade at revision 3" in pending["details"][0]
    assert "kestra-ops rollback --env dev" in pending["fix"]


def test_kestra_unreachable(install):
    install.kestra.stop()
    code, data = doctor(install)
    found = {f["id"]: f for f in data["findings"]}
    assert code == 1 and "cannot reach Kestra" in found["kestra-unreachable"]["details"][0]
    # what could not be looked at is named, with the findings it leaves unchecked
    skipped = {s["name"]: s for s in data["steps"] if s["status"] == "skip"}
    assert "cannot reach Kestra" in skipped["flows"]["detail"]
    assert any(d.startswith("not checked: basic-auth (kestra: Kestra's API cannot be used: ")
               for d in data["details"]), data["details"]
    assert any(d.startswith("not checked: stuck-executions (executions: ")
               for d in data["details"])


def test_text_output_has_evidence_and_fix(install):
    install.minio.live = 503
    install.kestra.add_flow(IN_ERRORS)
    result = install.run(command="doctor")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == f"doctor dev (namespace {NS})"
    # each source looked at, with what was seen there
    assert re.search(r"^  PASS +pods \(\d+\.\ds\): 3 pod\(s\), \d+ container log\(s\)$",
                     result.output, re.M), result.output
    assert re.search(r"^  PASS +flows \(\d+\.\ds\): 1 flow\(s\) \(blacklist: "
                     r"io\.kestra\.plugin\.docker\.\*\)$", result.output, re.M)
    # each problem: mark, id, what is wrong; then its evidence and its fix under it
    health = next(n for n, line in enumerate(lines)
                  if re.match(r"  FAIL  minio-health +MinIO health fails at http://", line))
    assert lines[health + 1].strip() == f"MinIO at http://{install.minio.endpoint} is not live: " \
        "/minio/health/live answered HTTP 503"
    assert lines[health + 2].strip().startswith("fix: check the MinIO service")
    plugin = next(n for n, line in enumerate(lines) if re.match(
        r"  FAIL  blacklisted-plugin +1 flow\(s\) use a blacklisted plugin type", line))
    assert "company.team.cleanup: errors[0].type: io.kestra.plugin.docker.Build" in \
        lines[plugin + 1]
    assert "kestra-ops flows validate" in lines[plugin + 2]
    assert lines[-1] == "doctor dev: 2 problem(s) found (2 error(s), 0 warning(s))"
    quiet = install.run("--quiet", command="doctor")
    assert quiet.exit_code == 1
    assert "PASS" not in quiet.output and "doctor dev (namespace" not in quiet.output
    assert [line.split()[1] for line in quiet.output.splitlines()
            if line.startswith("  FAIL")] == ["minio-health", "blacklisted-plugin"]
    assert quiet.output.splitlines()[-1] == lines[-1]


def test_every_output_format(install):
    install.minio.live = 503
    for fmt in ("yaml", "junit", "sarif", "github"):
        result = install.run("--output", fmt, command="doctor")
        assert result.exit_code == 1, result.output
        assert "minio-health" in result.stdout and "PASS" not in result.stdout
    from junitparser import Failure, JUnitXml

    xml = JUnitXml.fromstring(install.run("--output", "junit", command="doctor").stdout)
    cases = {case.name: case for suite in xml for case in suite}
    assert list(cases) == ["minio-health"]
    assert isinstance(cases["minio-health"].result[0], Failure)
    assert "check the MinIO service" not in cases["minio-health"].result[0].message
