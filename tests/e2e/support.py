"""One test's install on the real control plane: its namespace, project directory, Secrets, and
the reads the tests assert with (the cluster's own state, through the API and the real helm)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml
from click.testing import CliRunner

from kestra_ops.adapters.helm_cli import find_helm
from kestra_ops.cli import cli

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = "k8s-local"
PG_CLAIM = "data-kestra-postgres-0"
CONFIGMAP = "kestra-config"
DEPLOYMENT = "kestra-standalone"


def wait_until(what: str, predicate: Callable[[], object], timeout: float = 60.0,
               every: float = 0.25):
    """Poll ``predicate`` until it returns something truthy (returned); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")


@dataclass
class Install:
    """A namespace of the real cluster, a project dir whose env ``dev`` targets it."""

    namespace: str
    root: Path
    kubeconfig: Path
    api: object  # kubernetes.client.ApiClient (admin)

    # ------------------------------------------------------------------ the tool
    def run(self, *args: str, input: str | None = None):
        """``kestra-ops ARGS`` in-process (CliRunner); stdout and stderr apart."""
        return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)

    def run_ok(self, *args: str, input: str | None = None):
        result = self.run(*args, input=input)
        assert result.exit_code == 0, (f"kestra-ops {' '.join(args)} -> {result.exit_code}\n"
                                       f"{result.stdout}\n{result.stderr}")
        return result

    # ------------------------------------------------------------------ the cluster's state
    @property
    def core(self):
        from kubernetes import client

        return client.CoreV1Api(self.api)

    @property
    def apps(self):
        from kubernetes import client

        return client.AppsV1Api(self.api)

    @property
    def coordination(self):
        from kubernetes import client

        return client.CoordinationV1Api(self.api)

    def get(self, path: str) -> dict:
        """GET an API path as plain JSON (``/api/v1/namespaces/NS/configmaps/X``)."""
        return self._raw("GET", path)

    def _raw(self, method: str, path: str, body=None, content_type: str | None = None) -> dict:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        request = self.api.param_serialize(method, path, header_params=headers, body=body,
                                           auth_settings=["BearerToken"])
        response = self.api.call_api(*request)
        response.read()
        if response.status >= 300:
            raise AssertionError(f"{method} {path}: {response.status} {response.data[:300]!r}")
        return json.loads(response.data or b"{}")

    def configmap(self) -> dict:
        return self._raw("GET", f"/api/v1/namespaces/{self.namespace}/configmaps/{CONFIGMAP}")

    def app_yml(self) -> dict:
        return yaml.safe_load(self.configmap()["data"]["application.yml"])

    def deployment(self) -> dict:
        return self._raw("GET", f"/apis/apps/v1/namespaces/{self.namespace}/deployments/"
                                f"{DEPLOYMENT}")

    def managers(self, obj: dict) -> set[str]:
        return {m.get("manager") for m in obj["metadata"].get("managedFields") or []}

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [find_helm(), *args, "--namespace", self.namespace, "--kubeconfig",
               str(self.kubeconfig), "--kube-context", CONTEXT]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)}: {done.stderr}")
        return done

    def history(self) -> list[dict]:
        """The release's revisions as helm stores them (oldest first; [] when not installed)."""
        done = self.helm("history", "kestra", "-o", "json", check=False)
        if done.returncode != 0:
            if "not found" in done.stderr:
                return []
            raise AssertionError(done.stderr)
        return sorted(json.loads(done.stdout), key=lambda r: r["revision"])

    def pods(self, selector: str = "app.kubernetes.io/component=standalone") -> list[dict]:
        return self._raw("GET", f"/api/v1/namespaces/{self.namespace}/pods?labelSelector="
                                f"{selector}")["items"]

    def set_fault(self, state: str | None) -> None:
        """Put (or, with None, take off) a fake-kubelet fault on kestra-standalone's live pods."""
        for pod in self.pods():
            name = pod["metadata"]["name"]
            self.core.patch_namespaced_pod(name, self.namespace, {"metadata": {"annotations": {
                "fake-kubelet/state": state}}}, field_manager="e2e-test")

    def lease(self) -> dict | None:
        try:
            return self._raw("GET", f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/"
                                    "leases/kestra-ops-deploy")
        except AssertionError as err:
            if ": 404 " in str(err):
                return None
            raise

    def overlay(self) -> Path:
        return self.root / "values" / "dev.yaml"

    def edit_overlay(self, old: str, new: str) -> None:
        path = self.overlay()
        text = path.read_text()
        assert old in text, f"{old!r} not in {path}"
        path.write_text(text.replace(old, new, 1))


def s3_env(seaweed, bucket: str, username: str) -> dict[str, str]:
    """The variables that put ``dev`` on SeaweedFS: Kestra's bucket ``bucket``, the backup
    bucket ``<bucket>-backups``, the root key for both, and basic auth's username."""
    return {"KESTRA_OPS_MINIO_ENDPOINT": seaweed.endpoint, "KESTRA_OPS_MINIO_SECURE": "false",
            "KESTRA_OPS_MINIO_BUCKET": bucket, "KESTRA_OPS_BACKUP_BUCKET": f"{bucket}-backups",
            "KESTRA_OPS_MINIO_ACCESS_KEY": seaweed.root_user,
            "KESTRA_OPS_MINIO_SECRET_KEY": seaweed.root_password,
            "KESTRA_OPS_BACKUP_ACCESS_KEY": seaweed.root_user,
            "KESTRA_OPS_BACKUP_SECRET_KEY": seaweed.root_password,
            "KESTRA_OPS_BASIC_AUTH_USERNAME": username, **seaweed.env()}


def make_project(root: Path, namespace: str) -> None:
    shutil.copytree(ROOT / "values", root / "values")
    (root / "kestra-ops.yaml").write_text(yaml.safe_dump({
        "defaults": {"chart": str(ROOT / "charts" / "kestra"), "namespace": namespace},
        "environments": {"dev": {"context": CONTEXT,
                                 "values": ["values/base.yaml", "values/dev.yaml"]}},
    }))
