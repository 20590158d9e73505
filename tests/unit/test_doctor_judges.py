"""The doctor's rules on RECORDED state (tests/fixtures/checks): snapshots built from the e2e
control plane's pods and ConfigMap and from Kestra's answers, judged by every rule of the
registry (kestra_ops.checks imported directly, nothing fetched)."""

from __future__ import annotations

import io
import zipfile
from types import SimpleNamespace

import yaml

from kestra_ops.checks import parse_time
from kestra_ops.checks.doctor_rules import Snapshot, diagnose
from tests.fixtures.checks import cluster
from tests.fixtures.checks import kestra as answer

MICRONAUT = ("io.micronaut.context.exceptions.NoSuchBeanException: No bean of type "
             "[javax.sql.DataSource] exists for the given qualifier: @Named('postgres').")
PG_AUTH = 'FATAL:  password authentication failed for user "kestra"'


def snapshot(fixture: str = "healthy", logs: dict | None = None, **kw) -> Snapshot:
    state = cluster(fixture)
    live = cluster("healthy")["configmap"]  # the faults change pods, not the ConfigMap
    snap = Snapshot("dev", "ns", pods=state["pods"], logs=logs or {},
                    application=yaml.safe_load(live["data"]["application.yml"]),
                    auth_configs=answer("configs"), auth_errors=answer("basic-auth-valid"),
                    running=[], blacklist=("io.kestra.plugin.docker.*",))
    for key, value in kw.items():
        setattr(snap, key, value)
    return snap


def found(snap: Snapshot) -> dict:
    return {f.id: f for f in diagnose(snap)}


def crashing_pod(fixture: str = "crashloop") -> str:
    return next(p["metadata"]["name"] for p in cluster(fixture)["pods"]
                if p["metadata"]["name"].startswith("kestra-standalone"))


def test_the_recorded_healthy_install_has_no_problem():
    assert found(snapshot()) == {}
    assert found(snapshot("recovered")) == {}  # restarted, running again: not a problem


def test_crashloop_with_a_datasource_error_is_explained_once():
    pod = crashing_pod()
    problems = found(snapshot("crashloop", {(pod, "kestra"): ["Starting Kestra", MICRONAUT]}))
    assert list(problems) == ["datasource-missing"]
    ds = problems["datasource-missing"]
    assert ds.status == "fail" and "datasources.default" in ds.reason
    assert ds.details[0].startswith(f"pod {pod} container kestra: CrashLoopBackOff (")
    assert ds.details[1] == f"  | {MICRONAUT}"
    assert "kestra-ops config patch --env dev" in ds.fix


def test_other_crashes_and_failing_pods():
    pod = crashing_pod("oom")
    loop = found(snapshot("oom", {(pod, "kestra"): ["java.lang.OutOfMemoryError"]}))["crashloop"]
    assert loop.reason.startswith(f"pod {pod} container kestra: CrashLoopBackOff (OOMKilled) (")
    assert loop.details == ["  | java.lang.OutOfMemoryError"]
    failing = found(snapshot("image-pull"))
    assert list(failing) == ["pod-failing"]
    assert "ImagePullBackOff" in failing["pod-failing"].reason
    assert found(snapshot("never-ready")) == {}  # not ready is the readiness check's verdict


def test_postgres_missing_and_refusing_the_password():
    state = cluster("healthy")
    without = [p for p in state["pods"] if p["metadata"]["name"] != "kestra-postgres-0"]
    pg = found(snapshot(pods=without))["postgres-pod"]
    assert pg.reason == "PostgreSQL pod kestra-postgres-0 is not ready"
    assert pg.details == ["pod kestra-postgres-0: does not exist"]
    pod = crashing_pod()
    problems = found(snapshot("crashloop", {(pod, "kestra"): [f"PSQLException: {PG_AUTH}"],
                                            ("kestra-postgres-0", "postgres"): [PG_AUTH]}))
    assert list(problems) == ["postgres-auth"]
    assert problems["postgres-auth"].details == [  # pod by pod, in name order
        "pod kestra-postgres-0 container postgres:", f"  | {PG_AUTH}",
        f"pod {pod} container kestra:", f"  | PSQLException: {PG_AUTH}"]


def test_basic_auth_from_recorded_answers():
    auth = found(snapshot(auth_errors=answer("basic-auth-invalid-username")))["basic-auth"]
    assert auth.details == answer("basic-auth-invalid-username")
    auth = found(snapshot(auth_configs=answer("configs-basic-auth-not-initialized")))
    assert auth["basic-auth"].details == ["GET /api/v1/configs: isBasicAuthInitialized is false"]


def test_minio_endpoint_of_the_live_configmap():
    snap = snapshot()
    assert "minio-dns" not in found(snap)  # the recorded chart uses the cluster-internal name
    snap.application["kestra"]["storage"]["minio"]["endpoint"] = "minio.example.com"
    assert "not by cluster-internal DNS" in found(snap)["minio-dns"].reason
    assert found(snapshot(minio_url="http://m:9000", minio_health="HTTP 503"))[
        "minio-health"].details == ["HTTP 503"]


def test_stuck_executions_from_a_recorded_search():
    running = answer("executions-running")["results"]
    starts = sorted(parse_time(e["state"]["startDate"]).timestamp() for e in running)
    now = starts[-1] + 60  # the recording: one started 3 h before, one a minute before
    stuck = found(snapshot(running=running, now=now))["stuck-executions"]
    assert stuck.status == "warn" and stuck.reason == "1 execution(s) RUNNING for more than " \
                                                      "1h00m"
    assert stuck.details[0].startswith("company.team.etl execution ") and \
        stuck.details[0].endswith("RUNNING for 3h00m")
    assert "stuck-executions" not in found(snapshot(running=running, now=now,
                                                    stuck_after=4 * 3600))


class RecordedKestra:
    """Answers the doctor's flow reads with recorded bodies (a test double)."""

    def __init__(self, sources: list[str], validation: list[dict]):
        self.sources, self.validation = sources, validation

    def export_flows(self) -> bytes:
        data = io.BytesIO()
        with zipfile.ZipFile(data, "w") as archive:
            for n, text in enumerate(self.sources):
                archive.writestr(f"flow-{n}.yml", text)
        return data.getvalue()

    def validate_flows(self, text: str) -> list[dict]:
        assert text.count("\n---\n") == len(self.sources) - 1
        return self.validation


def test_flows_with_an_unknown_and_a_blacklisted_type():
    from kestra_ops.workflows.doctor import _blacklisted, _flows

    etl = ("id: etl\nnamespace: company.team\ntasks:\n  - id: run\n"
           "    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
    custom = etl.replace("id: etl", "id: custom").replace("io.kestra.plugin.core.log.Log",
                                                         "io.kestra.plugin.custom.Thing")
    docker = etl.replace("id: etl", "id: build").replace("io.kestra.plugin.core.log.Log",
                                                        "io.kestra.plugin.docker.Run")
    snap = snapshot()
    validation = answer("validate-unknown-type") + [{"index": 2, "flow": "build",
                                                     "namespace": "company.team"}]
    _flows(snap, RecordedKestra([etl, custom, docker], validation))
    _blacklisted(snap)
    problems = found(snap)
    assert problems["unknown-plugin"].details == [
        "company.team.custom: tasks[0]: Invalid type: io.kestra.plugin.custom.Thing"]
    assert problems["blacklisted-plugin"].details == [
        "company.team.build: tasks[0].type: io.kestra.plugin.docker.Run (blacklisted by "
        "'io.kestra.plugin.docker.*')"]


def test_release_and_rbac_verdicts():
    check = SimpleNamespace(status="fail", reason="stuck in pending-upgrade at revision 3",
                            details=[])
    assert "release-pending" in found(snapshot(release=check))
    rbac = SimpleNamespace(status="fail", reason="1 of 84 permissions missing in ns",
                           details=["cannot create secrets in ns"])
    assert found(snapshot(rbac=rbac))["rbac"].details == ["cannot create secrets in ns"]
    assert found(snapshot(kestra_error="GET configs: cannot reach Kestra"))[
        "kestra-unreachable"].details == ["GET configs: cannot reach Kestra"]
