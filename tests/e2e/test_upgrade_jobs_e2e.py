"""Migration Jobs on the real control plane: built from the live ``kestra-standalone`` Deployment
that ``deploy`` installed, run by the real Job controller (the fake kubelet completes a Job's pod
after 2 s; ``fake-kubelet/state`` faults it). Asserted through the API: the pod runs the target
image with the migration's arguments and the env's own Secrets and ConfigMap; a crashing
migration fails BackoffLimitExceeded and run_job says so; a Job still running at the timeout,
and one whose image cannot be pulled, are deleted. The fake kubelet serves no logs: run_job
says why in ``logs_note``."""

from __future__ import annotations

import pytest

from kestra_ops.adapters import kube_jobs
from kestra_ops.adapters.kube import Kube
from kestra_ops.workflows.upgrade.jobs import build_job, job_name, run_job
from tests.e2e.support import CONTEXT, wait_until

TARGET = "kestra/kestra:v1.4.0"
MIGRATE = ["migrate", "metadata", "kv"]


@pytest.fixture
def deployed(install):
    install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")
    kube = Kube(kubeconfig=str(install.kubeconfig), context=CONTEXT,
                namespace=install.namespace)
    try:
        yield install, kube, install.deployment()
    finally:
        kube.close()


def secret_refs(container: dict) -> dict[str, tuple[str, str]]:
    return {e["name"]: (e["valueFrom"]["secretKeyRef"]["name"],
                        e["valueFrom"]["secretKeyRef"]["key"])
            for e in container.get("env") or [] if "secretKeyRef" in (e.get("valueFrom") or {})}


def test_a_migration_job_from_the_live_deployment_completes(deployed):
    install, kube, deployment = deployed
    name = job_name("metadata kv")
    result = run_job(kube, install.namespace, build_job(deployment, name=name, image=TARGET,
                                                        args=MIGRATE), timeout=90, poll=0.5)
    assert result.succeeded, result.reason
    assert result.reason == "completed" and not result.deleted
    # no kubelet serves logs here: the API server cannot reach one, and run_job says so
    assert result.logs == [] and result.logs_note.startswith(f"log of pod {name}-")
    assert "container kestra not read: " in result.logs_note

    job = install.get(f"/apis/batch/v1/namespaces/{install.namespace}/jobs/{name}")
    assert job["status"]["succeeded"] == 1
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["ttlSecondsAfterFinished"] == 604800
    assert {m["manager"] for m in job["metadata"]["managedFields"]} >= {"kestra-ops"}
    pods = install.pods(f"batch.kubernetes.io/job-name={name}")
    assert len(pods) == 1 and pods[0]["status"]["phase"] == "Succeeded"
    pod = pods[0]
    (container,) = pod["spec"]["containers"]
    source = next(c for c in deployment["spec"]["template"]["spec"]["containers"]
                  if c["name"] == "kestra")
    assert container["image"] == TARGET and source["image"] != TARGET
    assert container["args"] == MIGRATE and "ports" not in container
    assert "livenessProbe" not in container and "readinessProbe" not in container
    assert secret_refs(container) == secret_refs(source) and len(secret_refs(source)) == 5
    # (the pod also gets the service account token's mount from admission)
    assert all(m in container["volumeMounts"] for m in source["volumeMounts"])
    config = next(v for v in pod["spec"]["volumes"] if v["name"] == "config")
    assert config["configMap"]["name"] == "kestra-config"
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"
    assert "checksum/config" not in pod["metadata"]["annotations"]
    # not one of the standalone pods (the Service's and the checklist's)
    assert name not in {p["metadata"]["name"].rsplit("-", 1)[0] for p in install.pods()}
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "migration"


def test_a_crashing_migration_fails_backoff_limit_exceeded(deployed):
    install, kube, deployment = deployed
    name = job_name("crash")
    body = build_job(deployment, name=name, image=TARGET, args=MIGRATE,
                     annotations={"fake-kubelet/state": "crashloop"})
    result = run_job(kube, install.namespace, body, timeout=90, poll=0.5)
    assert not result.succeeded and not result.deleted
    assert result.reason.startswith("BackoffLimitExceeded"), result.reason
    assert "container kestra terminated: Error (exit code 1)" in result.reason
    assert result.logs == [] and result.logs_note
    job = install.get(f"/apis/batch/v1/namespaces/{install.namespace}/jobs/{name}")
    failed = [c for c in job["status"]["conditions"] if c["type"] == "Failed"]
    assert failed[0]["status"] == "True" and failed[0]["reason"] == "BackoffLimitExceeded"
    assert job["status"]["failed"] == 1


def test_a_migration_still_running_at_the_timeout_is_deleted(deployed):
    install, kube, deployment = deployed
    name = job_name("slow")
    body = build_job(deployment, name=name, image=TARGET, args=MIGRATE,
                     annotations={"fake-kubelet/complete-after": "600"})
    result = run_job(kube, install.namespace, body, timeout=8, poll=0.5)
    assert not result.succeeded and result.deleted
    assert result.reason.startswith("timed out after 8s; job deleted; last state: pod "
                                    f"{name}-"), result.reason
    assert kube_jobs.read_job(kube, install.namespace, name) is None
    wait_until("the Job's pod to be collected",
               lambda: not install.pods(f"batch.kubernetes.io/job-name={name}"), timeout=60)


def test_a_target_image_that_cannot_be_pulled_stops_the_wait(deployed):
    install, kube, deployment = deployed
    name = job_name("no-image")
    body = build_job(deployment, name=name, image=TARGET, args=MIGRATE,
                     annotations={"fake-kubelet/state": "image-pull"})
    result = run_job(kube, install.namespace, body, timeout=120, poll=0.5)
    assert not result.succeeded and result.deleted and result.seconds < 60
    assert result.reason.startswith(f"stopped; job deleted; pod {name}-"), result.reason
    assert "container kestra waiting: ImagePullBackOff" in result.reason
    assert kube_jobs.read_job(kube, install.namespace, name) is None
