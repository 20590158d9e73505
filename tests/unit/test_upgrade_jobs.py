"""The migration Job built from the live Deployment (pure): the target image and the migration's
arguments in a pod that reads the env's own configuration and Secrets, without the Deployment's
probes, ports, labels or rollout annotations; and the Job's DNS-1123 name."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re

import pytest
import yaml

from kestra_ops.errors import InvalidInput
from kestra_ops.workflows.upgrade.jobs import TTL_SECONDS, build_job, job_name, kestra_args

# `helm template kestra charts/kestra -f values/base.yaml -f values/dev.yaml
#  --show-only templates/deployment.yaml` (istio on), plus what an operator's values may add
# (imagePullSecrets, a service account, scheduling, extraEnv with envFrom)
DEPLOYMENT = yaml.safe_load("""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: kestra-standalone
  namespace: ns1
  labels:
    helm.sh/chart: kestra-0.1.0
    app.kubernetes.io/name: kestra
    app.kubernetes.io/instance: kestra-dev
    app.kubernetes.io/component: standalone
    app.kubernetes.io/version: "v1.3.2"
    app.kubernetes.io/managed-by: Helm
    app.kubernetes.io/part-of: kestra
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: kestra
      app.kubernetes.io/instance: kestra-dev
      app.kubernetes.io/component: standalone
  template:
    metadata:
      labels:
        app.kubernetes.io/name: kestra
        app.kubernetes.io/instance: kestra-dev
        app.kubernetes.io/component: standalone
        sidecar.istio.io/inject: "true"
      annotations:
        checksum/config: 8abfd6126537fae3234ee303e3adce19c15f0f749d16fae29c5d55c3aa2f1a16
        kubectl.kubernetes.io/default-container: kestra
        proxy.istio.io/config: '{"holdApplicationUntilProxyStarts":true}'
        sidecar.istio.io/inject: "true"
    spec:
      serviceAccountName: kestra
      imagePullSecrets:
        - name: registry-creds
      terminationGracePeriodSeconds: 360
      securityContext:
        runAsNonRoot: true
        runAsUser: 1000
        runAsGroup: 1000
        fsGroup: 1000
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: kestra
          image: "kestra/kestra:v1.3.2"
          imagePullPolicy: IfNotPresent
          args: [server, standalone, --worker-thread, "8"]
          ports:
            - {name: http, containerPort: 8080, protocol: TCP}
            - {name: management, containerPort: 8081, protocol: TCP}
          env:
            - name: MICRONAUT_CONFIG_FILES
              value: /app/confs/application.yml
            - name: KESTRA_DB_PASSWORD
              valueFrom: {secretKeyRef: {name: kestra-postgres, key: password}}
            - name: KESTRA_MINIO_ACCESS_KEY
              valueFrom: {secretKeyRef: {name: kestra-minio, key: access-key}}
            - name: KESTRA_MINIO_SECRET_KEY
              valueFrom: {secretKeyRef: {name: kestra-minio, key: secret-key}}
            - name: KESTRA_BASIC_AUTH_PASSWORD
              valueFrom: {secretKeyRef: {name: kestra-basic-auth, key: password}}
            - name: KESTRA_ENCRYPTION_KEY
              valueFrom: {secretKeyRef: {name: kestra-encryption, key: encryption-key}}
            - name: JAVA_TOOL_OPTIONS
              value: -XX:MaxRAMPercentage=75.0
          envFrom:
            - secretRef: {name: kestra-extra}
          startupProbe:
            httpGet: {path: /health/liveness, port: management}
          livenessProbe:
            httpGet: {path: /health/liveness, port: management}
          readinessProbe:
            httpGet: {path: /health/readiness, port: management}
          resources:
            limits: {memory: 1536Mi}
            requests: {cpu: 500m, memory: 1536Mi}
          securityContext:
            allowPrivilegeEscalation: false
            privileged: false
            readOnlyRootFilesystem: false
            capabilities: {drop: ["ALL"]}
          volumeMounts:
            - {name: config, mountPath: /app/confs, readOnly: true}
        - name: log-shipper
          image: fluent/fluent-bit:3.0
      volumes:
        - name: config
          configMap:
            name: kestra-config
            items: [{key: application.yml, path: application.yml}]
      nodeSelector: {kubernetes.io/os: linux}
      tolerations:
        - {key: dedicated, operator: Equal, value: kestra, effect: NoSchedule}
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
              - matchExpressions: [{key: pool, operator: In, values: [kestra]}]
""")
TARGET = "kestra/kestra:v1.4.0"
MIGRATE = ["migrate", "metadata", "kv"]


def build(**kwargs) -> dict:
    options = {"name": "kestra-migrate-kv-20260101120000", "image": TARGET, "args": MIGRATE}
    return build_job(DEPLOYMENT, **{**options, **kwargs})


def test_target_image_and_migration_args_without_probes_or_ports():
    job = build()
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    assert job["metadata"]["name"] == "kestra-migrate-kv-20260101120000"
    pod = job["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["kestra"]  # no other container
    container = pod["containers"][0]
    assert container["image"] == TARGET and container["args"] == MIGRATE
    assert "command" not in container  # the image's entrypoint runs /app/kestra "$@"
    for key in ("ports", "startupProbe", "livenessProbe", "readinessProbe"):
        assert key not in container, key
    assert pod["restartPolicy"] == "Never"
    assert "terminationGracePeriodSeconds" not in pod


def test_env_secrets_config_and_scheduling_are_the_deployments():
    job = build()
    source_pod = DEPLOYMENT["spec"]["template"]["spec"]
    source = source_pod["containers"][0]
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    for key in ("env", "envFrom", "volumeMounts", "resources", "securityContext",
                "imagePullPolicy"):
        assert container[key] == source[key], key
    secrets = {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]
               if "valueFrom" in e}
    assert secrets == {"kestra-postgres", "kestra-minio", "kestra-basic-auth",
                       "kestra-encryption"}
    assert pod["volumes"] == [{"name": "config", "configMap": {
        "name": "kestra-config", "items": [{"key": "application.yml",
                                            "path": "application.yml"}]}}]
    for key in ("securityContext", "imagePullSecrets", "serviceAccountName", "nodeSelector",
                "tolerations", "affinity"):
        assert pod[key] == source_pod[key], key


def test_job_policy_labels_and_annotations():
    job = build(deadline_seconds=600)
    spec = job["spec"]
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] == 600
    assert spec["ttlSecondsAfterFinished"] == TTL_SECONDS == 604800
    meta = spec["template"]["metadata"]
    assert meta["annotations"] == {"sidecar.istio.io/inject": "false"}
    assert meta["labels"]["sidecar.istio.io/inject"] == "false"
    own = {"app.kubernetes.io/managed-by": "kestra-ops",
           "app.kubernetes.io/component": "migration",
           "app.kubernetes.io/instance": "kestra-dev"}
    assert job["metadata"]["labels"] == own
    # none of the Deployment's pod labels: its selector would put the pod behind the Service
    assert meta["labels"] == {**own, "sidecar.istio.io/inject": "false"}
    text = json.dumps(job)
    assert "checksum/config" not in text and "proxy.istio.io" not in text
    assert "standalone" not in text


def test_extra_annotations_and_labels_override():
    job = build(annotations={"fake-kubelet/state": "crashloop",
                             "sidecar.istio.io/inject": "true"},
                labels={"kestra-ops/step": "kv", "app.kubernetes.io/component": "upgrade"})
    meta = job["spec"]["template"]["metadata"]
    assert meta["annotations"] == {"fake-kubelet/state": "crashloop",
                                   "sidecar.istio.io/inject": "true"}
    assert meta["labels"]["sidecar.istio.io/inject"] == "true"  # the label follows
    assert job["metadata"]["labels"]["kestra-ops/step"] == "kv"
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "upgrade"


def test_the_deployment_is_not_changed():
    before = copy.deepcopy(DEPLOYMENT)
    job = build()
    job["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "X", "value": "1"})
    job["spec"]["template"]["spec"]["volumes"][0]["name"] = "changed"
    assert DEPLOYMENT == before


def test_a_deployment_without_a_kestra_container_is_refused():
    other = copy.deepcopy(DEPLOYMENT)
    other["spec"]["template"]["spec"]["containers"][0]["name"] = "server"
    with pytest.raises(InvalidInput, match=r"deployment kestra-standalone has no container "
                                           r"named kestra \(containers: server, log-shipper\)"):
        build_job(other, name="kestra-migrate-kv-1", image=TARGET, args=MIGRATE)
    with pytest.raises(InvalidInput, match=r"containers: none"):
        build_job({"metadata": {"name": "x"}}, name="j", image=TARGET, args=MIGRATE)


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "Kestra_Migrate"}, "not a DNS-1123 label"),
    ({"name": "a" * 64}, "not a DNS-1123 label"),
    ({"name": "-x"}, "not a DNS-1123 label"),
    ({"image": ""}, "not an image reference"),
    ({"image": "kestra/kestra:v1 --privileged"}, "not an image reference"),
    ({"args": "migrate metadata kv"}, "list of strings"),
    ({"args": ["migrate", 1]}, "list of strings"),
    ({"args": ["/app/kestra", "migrate", "metadata", "kv"]}, "entrypoint runs itself"),
    ({"deadline_seconds": 0}, "positive whole number"),
    ({"deadline_seconds": True}, "positive whole number"),
])
def test_bad_input_is_refused(kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        build(**kwargs)


def test_a_catalogue_command_becomes_the_clis_arguments():
    # the image's entrypoint runs `/app/kestra "$@"` (kestra-io/kestra docker-entrypoint.sh)
    assert kestra_args(["/app/kestra", "migrate", "metadata", "kv"]) == MIGRATE
    assert kestra_args(["kestra", "migrate", "metadata", "nsfiles"]) == [
        "migrate", "metadata", "nsfiles"]
    assert kestra_args(MIGRATE) == MIGRATE and kestra_args([]) == []
    job = build(args=kestra_args(["/app/kestra", *MIGRATE]))
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == MIGRATE


DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NOW = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("slug, expected", [
    ("kv", "kestra-migrate-kv-20260304050607"),
    ("Metadata KV", "kestra-migrate-metadata-kv-20260304050607"),
    ("v1.2.0.nsfiles", "kestra-migrate-v1-2-0-nsfiles-20260304050607"),
    ("--__..", "kestra-migrate-20260304050607"),
    ("", "kestra-migrate-20260304050607"),
])
def test_job_name(slug, expected):
    assert job_name(slug, NOW) == expected
    assert DNS_LABEL.match(expected) and len(expected) <= 63


def test_job_name_of_a_long_slug_is_cut_to_63_without_a_trailing_dash():
    name = job_name("metadata-" + "x" * 23 + "-yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy", NOW)
    assert len(name) <= 63 and DNS_LABEL.match(name) and "--" not in name
    assert name.startswith("kestra-migrate-metadata-") and name.endswith("-20260304050607")
    for n in range(0, 80):
        cut = job_name("A." * n + "Z", NOW)
        assert len(cut) <= 63 and DNS_LABEL.match(cut), cut


def test_job_name_is_in_utc():
    paris = dt.timezone(dt.timedelta(hours=1))
    assert job_name("kv", dt.datetime(2026, 3, 4, 6, 6, 7, tzinfo=paris)) == \
        "kestra-migrate-kv-20260304050607"
    assert re.fullmatch(r"kestra-migrate-kv-\d{14}", job_name("kv"))
