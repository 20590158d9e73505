"""The chart's database.mode (bundled | external | cloudnativepg) with the real helm binary:
bundled renders byte for byte what main rendered (tests/golden/chart-standalone-*), external
renders no bundled PostgreSQL and mounts the CA, cloudnativepg renders a CloudNativePG Cluster
only when the cluster serves postgresql.cnpg.io/v1/Cluster (``--api-versions``), and the
values schema refuses bad database keys."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers_golden import assert_golden
from tests.integration.test_chart_distributed import CHART, HELM, env_values

pytestmark = pytest.mark.skipif(not Path(HELM).exists(), reason="helm is not installed "
                                "(scripts/setup installs it)")
CNPG_API = "postgresql.cnpg.io/v1/Cluster"
EXTERNAL = """\
database:
  mode: external
  external:
    host: pg.prod.example.com
    port: 6432
    database: kestra
    username: kestra
    sslmode: verify-full
    ca: {configMapName: pg-ca-bundle, key: root.pem}
    passwordSecret: {name: pg-managed, key: pw}
"""
CNPG = """\
database:
  mode: cloudnativepg
  cloudnativepg:
    clusterName: kestra-db
    instances: 3
    storage: {size: 50Gi, storageClass: fast}
    resources: {requests: {cpu: "1", memory: 2Gi}, limits: {memory: 2Gi}}
    database: kestra
    owner: kestra
    backup:
      endpointURL: https://s3.example.com
      endpointCA: {name: s3-ca, key: ca.crt}
      retentionPolicy: 14d
backup:
  env: production
"""


def helm_template(*values: Path, api_versions: tuple[str, ...] = (),
                  sets: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    argv = [HELM, "template", "kestra", str(CHART), "--namespace", "kestra"]
    for path in values:
        argv += ["-f", str(path)]
    for api in api_versions:
        argv += ["--api-versions", api]
    for item in sets:
        argv += ["--set", item]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def render(*values: Path, **kw) -> dict[tuple[str, str], dict]:
    done = helm_template(*values, **kw)
    assert done.returncode == 0, done.stderr
    return {(d["kind"], d["metadata"]["name"]): d
            for d in yaml.safe_load_all(done.stdout) if d}


def override(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "database.yaml"
    path.write_text(text)
    return path


def kestra_pod(objects: dict) -> dict:
    return objects[("Deployment", "kestra-standalone")]["spec"]["template"]["spec"]


def db_password_ref(objects: dict) -> dict:
    env = kestra_pod(objects)["containers"][0]["env"]
    return next(e for e in env if e["name"] == "KESTRA_DB_PASSWORD")["valueFrom"]["secretKeyRef"]


# ------------------------------------------------------------------ bundled: unchanged

@pytest.mark.parametrize("name", ["dev", "production"])
def test_bundled_mode_renders_byte_for_byte_what_main_rendered(name, tmp_path):
    explicit = override(tmp_path, "database: {mode: bundled}\n")
    for values in (env_values(name), (*env_values(name), explicit)):
        done = helm_template(*values)
        assert done.returncode == 0, done.stderr
        assert_golden(f"chart-standalone-{name}.yaml", done.stdout)


def test_bundled_mode_ignores_the_cnpg_api_being_served():
    with_api = helm_template(*env_values("production"), api_versions=(CNPG_API,))
    assert with_api.returncode == 0 and "postgresql.cnpg.io" not in with_api.stdout


# ------------------------------------------------------------------ external

def test_external_mode_deploys_no_postgres_and_mounts_the_ca(tmp_path):
    objects = render(*env_values("production"), override(tmp_path, EXTERNAL))
    assert ("StatefulSet", "kestra-postgres") not in objects
    assert ("Service", "kestra-postgres") not in objects
    assert db_password_ref(objects) == {"name": "pg-managed", "key": "pw"}
    pod = kestra_pod(objects)
    [ca] = [v for v in pod["volumes"] if v["name"] == "db-ca"]
    assert ca["configMap"] == {"name": "pg-ca-bundle",
                               "items": [{"key": "root.pem", "path": "root.pem"}]}
    mounts = pod["containers"][0]["volumeMounts"]
    assert {"name": "db-ca", "mountPath": "/app/db-ca", "readOnly": True} in mounts


def test_external_mode_password_defaults_to_existing_secrets(tmp_path):
    objects = render(*env_values("production"), override(tmp_path, EXTERNAL.replace(
        "    passwordSecret: {name: pg-managed, key: pw}\n", "").replace(
        "    ca: {configMapName: pg-ca-bundle, key: root.pem}\n", "")))
    assert db_password_ref(objects) == {"name": "kestra-postgres", "key": "password"}
    assert not [v for v in kestra_pod(objects)["volumes"] if v["name"] == "db-ca"]


def test_external_mode_in_distributed_mode_mounts_the_ca_in_every_component(tmp_path):
    objects = render(*env_values("production"), override(tmp_path, EXTERNAL),
                     sets=("mode=distributed",))
    for component in ("webserver", "executor", "scheduler", "worker"):
        pod = objects[("Deployment", f"kestra-{component}")]["spec"]["template"]["spec"]
        assert [v["name"] for v in pod["volumes"]] == ["config", "db-ca"]


@pytest.mark.parametrize("text, message", [
    ("database: {mode: external}\n", "set database.external.host"),
    ("database: {mode: external, external: {host: h, ca: {secretName: a, configMapName: b}}}\n",
     "either secretName or configMapName"),
])
def test_external_mode_refuses_incomplete_settings(tmp_path, text, message):
    done = helm_template(*env_values("production"), override(tmp_path, text))
    assert done.returncode != 0 and message in done.stderr


# ------------------------------------------------------------------ cloudnativepg

def test_cloudnativepg_mode_fails_when_the_cluster_does_not_serve_the_crd(tmp_path):
    done = helm_template(*env_values("production"), override(tmp_path, CNPG))
    assert done.returncode != 0
    assert "does not serve postgresql.cnpg.io/v1/Cluster" in done.stderr
    assert "clusters.postgresql.cnpg.io" in done.stderr


def test_cloudnativepg_mode_renders_the_cluster(tmp_path):
    objects = render(*env_values("production"), override(tmp_path, CNPG),
                     api_versions=(CNPG_API,))
    assert ("StatefulSet", "kestra-postgres") not in objects
    assert ("Service", "kestra-postgres") not in objects
    cluster = objects[("Cluster", "kestra-db")]
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    assert cluster["metadata"]["namespace"] == "kestra"
    # the database: helm never deletes it (uninstall, a mode change, a rollback)
    assert cluster["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    spec = cluster["spec"]
    assert spec["instances"] == 3
    assert spec["storage"] == {"size": "50Gi", "storageClass": "fast"}
    assert spec["resources"]["requests"] == {"cpu": "1", "memory": "2Gi"}
    assert spec["bootstrap"] == {"initdb": {"database": "kestra", "owner": "kestra"}}
    assert spec["backup"]["retentionPolicy"] == "14d"
    store = spec["backup"]["barmanObjectStore"]
    assert store["destinationPath"] == "s3://kestra-production-backups/cnpg"
    assert store["endpointURL"] == "https://s3.example.com"
    assert store["endpointCA"] == {"name": "s3-ca", "key": "ca.crt"}
    assert store["s3Credentials"] == {
        "accessKeyId": {"name": "kestra-cnpg-backup", "key": "ACCESS_KEY_ID"},
        "secretAccessKey": {"name": "kestra-cnpg-backup", "key": "ACCESS_SECRET_KEY"}}
    assert store["wal"] == {"compression": "gzip"}
    # Kestra reads the owner's password from the operator's Secret and trusts its CA
    assert db_password_ref(objects) == {"name": "kestra-db-app", "key": "password"}
    [ca] = [v for v in kestra_pod(objects)["volumes"] if v["name"] == "db-ca"]
    assert ca["secret"]["secretName"] == "kestra-db-ca"


def test_cloudnativepg_backup_bucket_and_path(tmp_path):
    explicit = CNPG + "  bucket: team-backups\n"
    store = render(*env_values("production"), override(tmp_path, explicit),
                   api_versions=(CNPG_API,))[("Cluster", "kestra-db")]["spec"]["backup"]
    assert store["barmanObjectStore"]["destinationPath"] == "s3://team-backups/cnpg"
    no_bucket = CNPG.replace("backup:\n  env: production\n", "")
    unset = ("backup.enabled=false", "backup.env=", "backup.bucket=")
    done = helm_template(*env_values("production"), override(tmp_path, no_bucket),
                         api_versions=(CNPG_API,), sets=unset)
    assert done.returncode != 0 and "set destinationPath" in done.stderr
    off = no_bucket.replace("      retentionPolicy: 14d\n",
                            "      retentionPolicy: 14d\n      enabled: false\n")
    spec = render(*env_values("production"), override(tmp_path, off),
                  api_versions=(CNPG_API,), sets=unset)[("Cluster", "kestra-db")]["spec"]
    assert "backup" not in spec


def test_cloudnativepg_backup_role_may_create_backups(tmp_path):
    objects = render(*env_values("production"), override(tmp_path, CNPG),
                     api_versions=(CNPG_API,), sets=("backup.enabled=true",))
    rules = objects[("Role", "kestra-backup")]["rules"]
    assert {"apiGroups": ["postgresql.cnpg.io"], "resources": ["backups"],
            "verbs": ["create", "get"]} in rules
    assert {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["kestra-db-app"],
            "verbs": ["get"]} in rules


# ------------------------------------------------------------------ schema

@pytest.mark.parametrize("text, where", [
    ("database: {mode: managed}\n", "mode"),
    ("database: {extra: 1}\n", "extra"),
    ("database: {external: {sslmode: allow}}\n", "sslmode"),
    ("database: {external: {port: 70000}}\n", "port"),
    ("database: {cloudnativepg: {instances: 0}}\n", "instances"),
    ("database: {cloudnativepg: {backup: {retentionPolicy: 30 days}}}\n", "retentionPolicy"),
    ("database: {cloudnativepg: {backup: {destinationPath: 'https://x/y'}}}\n", "destinationPath"),
    ("database: {cloudnativepg: {storage: {size: 1Gi, class: x}}}\n", "class"),
])
def test_schema_refuses_bad_database_values(tmp_path, text, where):
    done = helm_template(*env_values("production"), override(tmp_path, text),
                         api_versions=(CNPG_API,))
    assert done.returncode != 0
    assert "schema" in done.stderr and where in done.stderr
