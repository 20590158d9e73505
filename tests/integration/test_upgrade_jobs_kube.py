"""Migration Jobs against the fake Kubernetes API (its Job controller and kubelet): a Job that
completes (the end of its log read), its log masked, one that fails (BackoffLimitExceeded, the
container's exit code named), one that times out and one whose image cannot be pulled (both
deleted), Ctrl-C (deleted, re-raised), and the adapter's typed errors and field manager."""

from __future__ import annotations

import threading

import pytest

from kestra_ops.adapters import kube_jobs
from kestra_ops.adapters.kube import Kube
from kestra_ops.errors import Conflict, PermissionDenied
from kestra_ops.results import Recorder, Report
from kestra_ops.workflows.upgrade.jobs import build_job, run_job
from tests.fakes.kube_api import fake_kube_fixture

NS = "hyperplane-kestra"
fake_kube = fake_kube_fixture(ready_delay=0.3)
DEPLOYMENT = {
    "metadata": {"name": "kestra-standalone", "labels": {"app.kubernetes.io/instance": "kestra"}},
    "spec": {"template": {"spec": {"containers": [{
        "name": "kestra", "image": "kestra/kestra:v1.3.2", "args": ["server", "standalone"],
        "ports": [{"name": "http", "containerPort": 8080}],
        "env": [{"name": "KESTRA_DB_PASSWORD", "valueFrom": {"secretKeyRef": {
            "name": "kestra-postgres", "key": "password"}}}]}]}}}}


@pytest.fixture
def kube(fake_kube):
    k = Kube(kubeconfig=str(fake_kube.kubeconfig), context="fake", namespace=NS)
    yield k
    k.close()


class Lines:
    """A progress sink (non-TTY): the lines run_job shows."""

    tty = False

    def __init__(self, interrupt_on: str | None = None):
        self.lines: list[str] = []
        self.interrupt_on = interrupt_on

    def info(self, message: str) -> None:
        self.lines.append(message)
        if self.interrupt_on and self.interrupt_on in message:
            raise KeyboardInterrupt

    update = info


def job(name: str, **kwargs) -> dict:
    return build_job(DEPLOYMENT, name=name, image="kestra/kestra:v1.4.0",
                     args=["migrate", "metadata", "kv"], **kwargs)


def log_when_the_pod_appears(fake, name: str, text: str) -> threading.Thread:
    """Give the Job's pod a `kestra` log as soon as the controller creates it."""
    def run():
        def pod():
            return next(iter(fake.store.list("pods", NS, f"job-name={name}")), None)

        if fake.wait_until(lambda: pod() is not None, timeout=5):
            fake.store.set_log(NS, pod()["metadata"]["name"], "kestra", text)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_job_that_completes_with_the_end_of_its_log(kube, fake_kube):
    name = "kestra-migrate-kv-1"
    log = "INFO starting\n" + "".join(f"row {i}\n" for i in range(300)) + \
        "✅ KV Metadata migration complete.\n"
    log_when_the_pod_appears(fake_kube, name, log)
    progress = Lines()
    rec = Recorder(Report("upgrade run"), progress)
    result = run_job(kube, NS, job(name), timeout=20, rec=rec, poll=0.05)
    assert result.succeeded and result.reason == "completed" and not result.deleted
    assert result.logs_note is None and len(result.logs) == 200
    assert result.logs[-1] == "✅ KV Metadata migration complete."
    assert result.logs[0] == "row 101"  # the last 200 lines
    # the finished Job is left for its TTL, with the pod the controller made from our spec
    live = kube_jobs.read_job(kube, NS, name)
    assert live["status"]["succeeded"] == 1
    assert live["spec"]["ttlSecondsAfterFinished"] == 604800
    pod = kube_jobs.job_pods(kube, NS, name)[0]
    container = pod["spec"]["containers"][0]
    assert container["image"] == "kestra/kestra:v1.4.0"
    assert container["args"] == ["migrate", "metadata", "kv"] and "ports" not in container
    assert [c["name"] for c in pod["spec"]["containers"]] == ["kestra"]  # no sidecar
    creates = fake_kube.requests_matching("POST", "/jobs")
    assert {r.query.get("fieldManager") for r in creates} == {"kestra-ops"}
    assert progress.lines[0] == f"  job {name}: created in namespace {NS}"
    assert progress.lines[-1] == f"  job {name}: succeeded: completed"
    assert any("Running" in line for line in progress.lines)


def test_every_log_line_is_masked(kube, fake_kube):
    name = "kestra-migrate-kv-mask"
    log_when_the_pod_appears(fake_kube, name, "INFO starting\n"
                             "connecting postgresql://kestra:Db-Passw0rd@db:5432/kestra\n"
                             "using the key Minio-Secret-123 and password=hunter2\n"
                             "done\n")
    result = run_job(kube, NS, job(name), timeout=20, poll=0.05, log_lines=1000,
                     mask=lambda line: line.replace("Minio-Secret-123", "******"))
    assert result.succeeded and result.logs_note is None
    assert result.logs == ["INFO starting",
                           "connecting postgresql://kestra:******@db:5432/kestra",
                           "using the key ****** and password=******", "done"]
    assert "Db-Passw0rd" not in str(result.to_dict())


def test_a_failing_job_says_backoff_limit_exceeded_and_the_exit_code(kube, fake_kube):
    name = "kestra-migrate-kv-bad"
    fake_kube.controller.set_failure(name, "fail")
    fake_kube.deny("get", "pods/log")
    result = run_job(kube, NS, job(name), timeout=20, poll=0.05)
    assert not result.succeeded and not result.deleted
    assert result.reason.startswith("BackoffLimitExceeded: Job has reached the specified "
                                    "backoff limit (pod kestra-migrate-kv-bad-")
    assert result.reason.endswith("Failed: container kestra terminated: Error (exit code 1))")
    assert result.logs == []
    assert result.logs_note.startswith("log of pod kestra-migrate-kv-bad-")
    assert "forbidden" in result.logs_note and "\n" not in result.logs_note
    live = kube_jobs.read_job(kube, NS, name)  # left in place, for an operator to look at
    assert live["status"]["failed"] == 1 and live["spec"]["backoffLimit"] == 0


def test_a_job_that_does_not_finish_in_time_is_deleted(kube, fake_kube):
    name = "kestra-migrate-kv-slow"
    fake_kube.controller.set_failure(name, "unschedulable")
    result = run_job(kube, NS, job(name), timeout=1.5, poll=0.05)
    assert not result.succeeded and result.deleted
    assert result.reason.startswith("timed out after 1.5s; job deleted; last state: pod "
                                    "kestra-migrate-kv-slow-")
    assert " Pending: Unschedulable (0/3 nodes are available: 3 Insufficient memory." in \
        result.reason
    assert result.logs == [] and result.logs_note
    assert 1.5 <= result.seconds < 10
    assert kube_jobs.read_job(kube, NS, name) is None
    delete = fake_kube.requests_matching("DELETE", f"/jobs/{name}")
    assert len(delete) == 1 and delete[0].query["propagationPolicy"] == "Background"
    assert fake_kube.wait_until(lambda: not kube_jobs.job_pods(kube, NS, name))


def test_an_image_that_cannot_be_pulled_is_not_waited_for(kube, fake_kube):
    """A target image that does not exist would wait out the whole timeout (30 minutes in a
    real upgrade): the pod's ImagePullBackOff stops the wait, and the Job is deleted."""
    name = "kestra-migrate-kv-noimage"
    fake_kube.controller.set_failure(name, "imagepull")
    result = run_job(kube, NS, job(name), timeout=30, poll=0.05)
    assert not result.succeeded and result.deleted and result.seconds < 10
    assert result.reason.startswith("stopped; job deleted; pod kestra-migrate-kv-noimage-")
    assert result.reason.endswith('Pending: container kestra waiting: ImagePullBackOff '
                                  '(Back-off pulling image "kestra/kestra:v1.4.0")')
    assert kube_jobs.read_job(kube, NS, name) is None


def test_ctrl_c_while_waiting_deletes_the_job(kube, fake_kube):
    name = "kestra-migrate-kv-stop"
    fake_kube.controller.set_failure(name, "unschedulable")
    progress = Lines(interrupt_on="pod ")
    with pytest.raises(KeyboardInterrupt):
        run_job(kube, NS, job(name), timeout=30, rec=Recorder(Report("x"), progress),
                poll=0.05)
    assert kube_jobs.read_job(kube, NS, name) is None
    assert len(fake_kube.requests_matching("DELETE", f"/jobs/{name}")) == 1


def test_a_name_taken_is_a_conflict_and_the_other_job_is_kept(kube, fake_kube):
    name = "kestra-migrate-kv-twice"
    first = kube_jobs.create_job(kube, NS, job(name, annotations={"who": "first"}))
    with pytest.raises(Conflict, match=rf"create job {name} in namespace {NS}: conflict"):
        run_job(kube, NS, job(name), timeout=5, poll=0.05)
    kept = kube_jobs.read_job(kube, NS, name)
    assert kept["metadata"]["uid"] == first["metadata"]["uid"]
    assert not fake_kube.requests_matching("DELETE", "/jobs/")


def test_a_forbidden_create_names_the_verb_and_the_resource(kube, fake_kube):
    fake_kube.deny("create", "jobs", NS)
    with pytest.raises(PermissionDenied, match=rf"create job kestra-migrate-kv-x in namespace "
                                                rf"{NS}: forbidden: .*cannot create resource "):
        run_job(kube, NS, job("kestra-migrate-kv-x"), timeout=5, poll=0.05)
    fake_kube.allow("create", "jobs", NS)
    fake_kube.deny("get", "jobs", NS)
    with pytest.raises(PermissionDenied, match=r"get job kestra-migrate-kv-y in namespace"):
        run_job(kube, NS, job("kestra-migrate-kv-y"), timeout=5, poll=0.05)
    # what was created and cannot be watched is not left running
    assert fake_kube.store.get("jobs", NS, "kestra-migrate-kv-y") is None


def test_adapter_reads_and_deletes(kube, fake_kube):
    assert kube_jobs.read_job(kube, NS, "nothing") is None
    assert kube_jobs.delete_job(kube, NS, "nothing") is False
    assert kube_jobs.job_pods(kube, NS, "nothing") == []
    # a cluster older than 1.27 labels a Job's pods job-name only
    fake_kube.seed({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "old-job-abcde", "namespace": NS, "labels": {"job-name": "old-job"}},
        "spec": {"containers": [{"name": "kestra", "image": "x:1"}]},
        "status": {"phase": "Succeeded"}})
    assert [p["metadata"]["name"] for p in kube_jobs.job_pods(kube, NS, "old-job")] == [
        "old-job-abcde"]
    selectors = [r.query.get("labelSelector")
                 for r in fake_kube.requests_matching("GET", f"/namespaces/{NS}/pods")]
    assert selectors[-2:] == ["batch.kubernetes.io/job-name=old-job", "job-name=old-job"]
    created = kube_jobs.create_job(kube, NS, job("kestra-migrate-kv-del"))
    assert created["metadata"]["uid"]
    assert kube_jobs.delete_job(kube, NS, "kestra-migrate-kv-del") is True
    assert kube_jobs.read_job(kube, NS, "kestra-migrate-kv-del") is None
