"""The fake Kubernetes API server, exercised only through the real `kubernetes` client loaded
from a kubeconfig, as product code would use it."""
from __future__ import annotations

import datetime as dt
import json
import re
import threading
from types import SimpleNamespace

import pytest

from tests.fakes.kube_api import FakeKube, fake_kube_fixture

NS = "hyperplane-kestra"
SAFE = "[bcdfghjklmnpqrstvwxz2456789]"

kube = fake_kube_fixture(ready_delay=0.05)


@pytest.fixture
def k8s(kube):
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kube.kubeconfig), context="fake",
                            client_configuration=cfg)
    with client.ApiClient(cfg) as api:
        yield SimpleNamespace(
            api=api, client=client, core=client.CoreV1Api(api), apps=client.AppsV1Api(api),
            batch=client.BatchV1Api(api), coord=client.CoordinationV1Api(api),
            authz=client.AuthorizationV1Api(api))


def status_of(exc) -> dict:
    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1"
    assert body["status"] == "Failure" and body["code"] == exc.status
    return body


def deployment(name, replicas=1, *, sidecar=False, containers=None):
    labels = {"app.kubernetes.io/name": name}
    tmd = {"labels": dict(labels)}
    if sidecar:
        tmd["annotations"] = {"sidecar.istio.io/inject": "true"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": tmd, "spec": {"containers": containers or [
                         {"name": "kestra", "image": "kestra/kestra:v1.3.2",
                          "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                          "ports": [{"containerPort": 8080, "name": "http"}]}]}}}}


def wait(kube, pred, timeout=3.0):
    assert kube.wait_until(pred, timeout), "condition not reached"


# ------------------------------------------------------------------ discovery


def test_discovery_through_client(k8s):
    c = k8s.client
    assert re.match(r"v1\.31\.\d+$", c.VersionApi(k8s.api).get_code().git_version)
    assert c.CoreApi(k8s.api).get_api_versions().versions == ["v1"]
    groups = {g.name for g in c.ApisApi(k8s.api).get_api_versions().groups}
    assert {"apps", "batch", "coordination.k8s.io", "authorization.k8s.io",
            "rbac.authorization.k8s.io"} <= groups
    core = {r.name: r for r in k8s.core.get_api_resources().resources}
    assert core["namespaces"].namespaced is False and core["pods"].kind == "Pod"
    assert {"pods/log", "events", "secrets", "serviceaccounts",
            "persistentvolumeclaims"} <= set(core)
    apps = {r.name for r in k8s.apps.get_api_resources().resources}
    assert {"deployments", "deployments/scale", "statefulsets"} <= apps
    ssar = {r.name: r for r in k8s.authz.get_api_resources().resources}
    assert ssar["selfsubjectaccessreviews"].verbs == ["create"]


def test_wrong_token_is_401(kube, tmp_path):
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    path = kube.write_kubeconfig(tmp_path / "kc", token="stolen")
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=cfg)
    with client.ApiClient(cfg) as api, pytest.raises(ApiException) as e:
        client.CoreV1Api(api).list_namespaced_pod(NS)
    assert e.value.status == 401 and status_of(e.value)["reason"] == "Unauthorized"


# ------------------------------------------------------------------ CRUD, selectors, errors


def test_configmap_crud_and_errors(k8s, kube):
    from kubernetes.client.rest import ApiException

    cm = {"metadata": {"name": "kestra-config", "labels": {"app": "kestra"}},
          "data": {"application.yml": "kestra: {}"}}
    created = k8s.core.create_namespaced_config_map(NS, cm)
    md = created.metadata
    assert md.uid and md.resource_version.isdigit() and md.creation_timestamp.tzinfo
    assert md.namespace == NS
    with pytest.raises(ApiException) as e:
        k8s.core.create_namespaced_config_map(NS, cm)
    st = status_of(e.value)
    assert (e.value.status, st["reason"]) == (409, "AlreadyExists")
    assert st["details"] == {"name": "kestra-config", "kind": "configmaps"}
    assert st["message"] == 'configmaps "kestra-config" already exists'

    got = k8s.core.read_namespaced_config_map("kestra-config", NS)
    assert got.data == {"application.yml": "kestra: {}"}
    stale = got.metadata.resource_version
    got.data["extra"] = "1"
    replaced = k8s.core.replace_namespaced_config_map("kestra-config", NS, got)
    assert int(replaced.metadata.resource_version) > int(stale)
    got.metadata.resource_version = stale
    with pytest.raises(ApiException) as e:
        k8s.core.replace_namespaced_config_map("kestra-config", NS, got)
    assert e.value.status == 409 and status_of(e.value)["reason"] == "Conflict"
    assert "the object has been modified" in status_of(e.value)["message"]

    res = k8s.core.delete_namespaced_config_map("kestra-config", NS)  # the client returns a dict
    assert res["kind"] == "Status" and res["status"] == "Success"
    assert res["details"]["name"] == "kestra-config" and res["details"]["uid"] == md.uid
    with pytest.raises(ApiException) as e:
        k8s.core.read_namespaced_config_map("kestra-config", NS)
    st = status_of(e.value)
    assert (e.value.status, st["reason"]) == (404, "NotFound")
    assert st["message"] == 'configmaps "kestra-config" not found'
    with pytest.raises(ApiException) as e:
        k8s.apps.read_namespaced_deployment("nope", NS)
    assert status_of(e.value)["message"] == 'deployments.apps "nope" not found'


def test_validation_and_namespace_errors(k8s):
    from kubernetes.client.rest import ApiException

    with pytest.raises(ApiException) as e:
        k8s.core.create_namespaced_config_map("missing-ns", {"metadata": {"name": "x"}})
    assert e.value.status == 404
    assert status_of(e.value)["message"] == 'namespaces "missing-ns" not found'
    with pytest.raises(ApiException) as e:
        k8s.core.create_namespaced_config_map(NS, {"metadata": {"name": "Bad_Name"}})
    st = status_of(e.value)
    assert (e.value.status, st["reason"]) == (422, "Invalid")
    assert st["details"]["causes"][0]["field"] == "metadata.name"
    bad = deployment("web")
    bad["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    with pytest.raises(ApiException) as e:
        k8s.apps.create_namespaced_deployment(NS, bad)
    assert "`selector` does not match template `labels`" in status_of(e.value)["message"]
    with pytest.raises(ApiException) as e:
        k8s.core.create_namespaced_config_map(NS, {"metadata": {"name": "x", "labels": {
            "backup": "2026-11-24T01:02:03Z"}}})
    assert e.value.status == 422 and "metadata.labels" in status_of(e.value)["message"]


def test_secret_string_data_and_dry_run(k8s, kube):
    k8s.core.create_namespaced_secret(NS, {"metadata": {"name": "s"},
                                           "stringData": {"pw": "hunter2"}})
    sec = k8s.core.read_namespaced_secret("s", NS)
    assert sec.data == {"pw": "aHVudGVyMg=="} and sec.type == "Opaque" and not sec.string_data
    k8s.core.create_namespaced_config_map(NS, {"metadata": {"name": "dry"}}, dry_run="All")
    assert kube.store.get("configmaps", NS, "dry") is None


def test_label_and_field_selectors(k8s):
    from kubernetes.client.rest import ApiException

    for name, labels in {"a": {"tier": "web", "env": "prod"}, "b": {"tier": "db", "env": "prod"},
                         "c": {"tier": "web"}, "d": {}}.items():
        k8s.core.create_namespaced_config_map(NS, {"metadata": {"name": name, "labels": labels}})

    def names(**kw):
        return sorted(i.metadata.name for i in k8s.core.list_namespaced_config_map(NS, **kw).items)

    assert names(label_selector="tier=web") == ["a", "c"]
    assert names(label_selector="tier==web,env=prod") == ["a"]
    assert names(label_selector="tier!=web") == ["b", "d"]
    assert names(label_selector="tier in (web, db)") == ["a", "b", "c"]
    assert names(label_selector="tier notin (web)") == ["b", "d"]
    assert names(label_selector="env") == ["a", "b"]
    assert names(label_selector="!env") == ["c", "d"]
    assert names(label_selector="tier in (web),!env") == ["c"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="metadata.name!=b", label_selector="env") == ["a"]
    assert names(field_selector=f"metadata.namespace={NS}") == ["a", "b", "c", "d"]
    lst = k8s.core.list_namespaced_config_map(NS, limit=3)
    assert len(lst.items) == 3 and lst.metadata.remaining_item_count == 1
    rest = k8s.core.list_namespaced_config_map(NS, limit=3, _continue=lst.metadata._continue)
    assert [i.metadata.name for i in rest.items] == ["d"]
    assert lst.kind == "ConfigMapList" and lst.metadata.resource_version.isdigit()
    with pytest.raises(ApiException) as e:
        names(label_selector="tier in web")
    assert e.value.status == 400
    with pytest.raises(ApiException) as e:
        names(field_selector="data.x=1")
    assert e.value.status == 400 and "field label not supported" in status_of(e.value)["message"]


def test_three_patch_kinds(k8s, kube):
    from kubernetes.client.rest import ApiException

    k8s.apps.create_namespaced_deployment(NS, deployment("web"))
    # strategic merge (a dict body): containers and env merged by name
    k8s.apps.patch_namespaced_deployment("web", NS, {"spec": {"template": {"spec": {
        "containers": [{"name": "kestra", "env": [{"name": "B", "value": "20"},
                                                  {"name": "C", "value": "3"}]}]}}}})
    req = kube.requests_matching("PATCH", "/deployments/web")[-1]
    assert req.content_type == "application/strategic-merge-patch+json"
    c = k8s.apps.read_namespaced_deployment("web", NS).spec.template.spec.containers[0]
    assert [(e.name, e.value) for e in c.env] == [("A", "1"), ("B", "20"), ("C", "3")]
    assert c.image == "kestra/kestra:v1.3.2" and c.ports[0].container_port == 8080
    # $patch: delete in a keyed list
    k8s.apps.patch_namespaced_deployment("web", NS, {"spec": {"template": {"spec": {
        "containers": [{"name": "kestra", "env": [{"name": "A", "$patch": "delete"}]}]}}}})
    c = k8s.apps.read_namespaced_deployment("web", NS).spec.template.spec.containers[0]
    assert [e.name for e in c.env] == ["B", "C"]
    # JSON merge patch (RFC 7386): lists replaced, null deletes
    k8s.apps.patch_namespaced_deployment(
        "web", NS, {"metadata": {"labels": {"app.kubernetes.io/name": None, "x": "y"}}},
        _content_type="application/merge-patch+json")
    assert k8s.apps.read_namespaced_deployment("web", NS).metadata.labels == {"x": "y"}
    # JSON patch (RFC 6902): a list body
    d = k8s.apps.patch_namespaced_deployment("web", NS, [
        {"op": "test", "path": "/spec/replicas", "value": 1},
        {"op": "replace", "path": "/spec/replicas", "value": 3},
        {"op": "add", "path": "/metadata/annotations", "value": {"a/b": "c"}},
        {"op": "remove", "path": "/metadata/labels/x"}])
    assert kube.requests[-1].content_type == "application/json-patch+json"
    assert d.spec.replicas == 3 and d.metadata.annotations == {"a/b": "c"}
    assert not d.metadata.labels
    with pytest.raises(ApiException) as e:
        k8s.apps.patch_namespaced_deployment("web", NS, [
            {"op": "test", "path": "/spec/replicas", "value": 99}])
    assert e.value.status == 422
    cm = k8s.core.create_namespaced_config_map(NS, {"metadata": {"name": "cfg"},
                                                    "data": {"a": "1"}})
    with pytest.raises(ApiException) as e:  # a resourceVersion in a patch is a precondition
        k8s.core.patch_namespaced_config_map("cfg", NS, {"metadata": {"resourceVersion": "1"}})
    assert e.value.status == 409
    k8s.core.patch_namespaced_config_map(
        "cfg", NS, {"metadata": {"resourceVersion": cm.metadata.resource_version},
                    "data": {"b": "2"}}, _content_type="application/merge-patch+json")
    assert k8s.core.read_namespaced_config_map("cfg", NS).data == {"a": "1", "b": "2"}


def test_forbidden_and_ssar(k8s, kube):
    from kubernetes.client.rest import ApiException

    kube.deny("list", "secrets", NS)
    kube.deny("get", "pods/log")
    with pytest.raises(ApiException) as e:
        k8s.core.list_namespaced_secret(NS)
    st = status_of(e.value)
    assert (e.value.status, st["reason"]) == (403, "Forbidden")
    assert 'cannot list resource "secrets" in API group "" in the namespace' in st["message"]
    k8s.core.list_namespaced_secret("default")  # only denied in NS

    def review(verb, resource, ns=NS, group="", sub=None):
        attrs = {"verb": verb, "resource": resource, "namespace": ns, "group": group}
        if sub:
            attrs["subresource"] = sub
        return k8s.authz.create_self_subject_access_review(
            {"spec": {"resourceAttributes": attrs}}).status

    denied = review("list", "secrets")
    assert denied.allowed is False and "secrets" in denied.reason
    assert review("get", "pods", sub="log").allowed is False
    allowed = review("patch", "deployments", group="apps")
    assert allowed.allowed is True and allowed.reason
    model = k8s.client.V1SelfSubjectAccessReview(spec=k8s.client.V1SelfSubjectAccessReviewSpec(
        resource_attributes=k8s.client.V1ResourceAttributes(verb="list", resource="secrets",
                                                            namespace=NS)))
    assert k8s.authz.create_self_subject_access_review(model).status.allowed is False
    kube.allow("list", "secrets", NS)
    assert review("list", "secrets").allowed is True


def test_injected_failure(k8s, kube):
    from kubernetes.client.rest import ApiException

    kube.fail_next("list", "pods", code=503, reason="ServiceUnavailable")
    with pytest.raises(ApiException) as e:
        k8s.core.list_namespaced_pod(NS)
    assert e.value.status == 503
    k8s.core.list_namespaced_pod(NS)


# ------------------------------------------------------------------ timestamps


def test_lease_microtime(k8s, kube):
    """MicroTime fields must carry exactly six fractional digits. The client (37.x) re-parses
    create/replace bodies, even dicts, into models and renders datetimes with isoformat(),
    which drops a zero fraction: those requests fail as they would on a real cluster."""
    from kubernetes import dynamic
    from kubernetes.client.rest import ApiException

    zero = "2026-11-24T01:02:03.000000Z"
    with pytest.raises(ApiException) as e:
        k8s.coord.create_namespaced_lease(NS, {"metadata": {"name": "lock"},
                                               "spec": {"acquireTime": zero}})
    st = status_of(e.value)
    assert (e.value.status, st["reason"]) == (400, "BadRequest")
    assert st["message"] == ('Lease in version "v1" cannot be handled as a Lease: parsing time '
                             '"2026-11-24T01:02:03+00:00" as "2006-01-02T15:04:05.000000Z07:00":'
                             ' cannot parse "+00:00" as ".000000"')
    assert kube.requests[-1].body["spec"]["acquireTime"] == "2026-11-24T01:02:03+00:00"

    # a datetime with microseconds serialises into a valid MicroTime
    t = dt.datetime(2026, 11, 24, 1, 2, 3, 123456, tzinfo=dt.timezone.utc)
    lease = k8s.coord.create_namespaced_lease(NS, k8s.client.V1Lease(
        metadata=k8s.client.V1ObjectMeta(name="lock"),
        spec=k8s.client.V1LeaseSpec(holder_identity="ci-1", lease_duration_seconds=60,
                                    acquire_time=t, renew_time=t)))
    assert lease.spec.acquire_time == t
    stored = kube.store.get("leases", NS, "lock")["spec"]
    assert stored["renewTime"] == "2026-11-24T01:02:03.123456Z"
    # patch bodies are sent as given: RFC 3339 strings with microseconds pass unchanged
    k8s.coord.patch_namespaced_lease("lock", NS, {"spec": {"renewTime": zero}})
    assert kube.store.get("leases", NS, "lock")["spec"]["renewTime"] == zero
    # so does the dynamic client
    leases = dynamic.DynamicClient(k8s.api).resources.get(
        api_version="coordination.k8s.io/v1", kind="Lease")
    made = leases.create(namespace=NS, body={
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "other"},
        "spec": {"holderIdentity": "ci-2", "acquireTime": zero, "renewTime": zero}})
    assert made.spec.acquireTime == zero
    # optimistic concurrency on renew
    cur = k8s.coord.read_namespaced_lease("lock", NS)
    cur.spec.renew_time = t + dt.timedelta(seconds=10)
    cur.spec.acquire_time = t
    renewed = k8s.coord.replace_namespaced_lease("lock", NS, cur)
    assert renewed.spec.renew_time == t + dt.timedelta(seconds=10)
    with pytest.raises(ApiException) as e:
        k8s.coord.replace_namespaced_lease("lock", NS, cur)  # cur has the old resourceVersion
    assert e.value.status == 409 and status_of(e.value)["reason"] == "Conflict"
    assert status_of(e.value)["details"] == {"name": "lock", "group": "coordination.k8s.io",
                                             "kind": "leases"}


def test_event_time_validation(k8s):
    from kubernetes.client.rest import ApiException

    ev = {"metadata": {"name": "e1"}, "involvedObject": {"kind": "Pod", "name": "p",
                                                        "namespace": NS},
          "reason": "Deploy", "message": "m", "type": "Normal",
          "eventTime": "2026-11-24T01:02:03.250000Z"}
    with pytest.raises(ApiException) as e:  # new-style events need the reporting fields
        k8s.core.create_namespaced_event(NS, ev)
    assert e.value.status == 422 and "reportingComponent: Required value" in e.value.body
    ev.update(reportingComponent="kestra-ops", reportingInstance="ci", action="Deploy")
    assert k8s.core.create_namespaced_event(NS, ev).event_time.microsecond == 250000
    with pytest.raises(ApiException) as e:  # serialised as ...03+00:00: no fraction
        k8s.core.create_namespaced_event(NS, {**ev, "metadata": {"name": "e2"},
                                              "eventTime": "2026-11-24T01:02:03Z"})
    assert e.value.status == 400


# ------------------------------------------------------------------ controller


def _pods(k8s, selector):
    return k8s.core.list_namespaced_pod(NS, label_selector=selector).items


def test_deployment_rollout_and_restart(k8s, kube):
    k8s.apps.create_namespaced_deployment(NS, deployment("kestra", replicas=2))
    d = k8s.apps.read_namespaced_deployment("kestra", NS)
    assert d.metadata.generation == 1

    def ready(gen):
        st = k8s.apps.read_namespaced_deployment_status("kestra", NS).status
        return (st.observed_generation == gen and st.updated_replicas == 2 and
                st.ready_replicas == 2 and st.available_replicas == 2 and st.replicas == 2)

    wait(kube, lambda: ready(1))
    st = k8s.apps.read_namespaced_deployment("kestra", NS).status
    conds = {c.type: c for c in st.conditions}
    assert conds["Available"].status == "True"
    assert conds["Progressing"].reason == "NewReplicaSetAvailable"
    pods = _pods(k8s, "app.kubernetes.io/name=kestra")
    assert len(pods) == 2
    for p in pods:
        assert re.fullmatch(rf"kestra-{SAFE}{{10}}-{SAFE}{{5}}", p.metadata.name)
        assert p.metadata.owner_references[0].kind == "ReplicaSet"
        assert p.status.phase == "Running" and p.status.start_time
        assert [c.name for c in p.status.container_statuses] == ["kestra"]
        assert p.status.container_statuses[0].ready and p.metadata.labels["pod-template-hash"]
    old_hash = pods[0].metadata.labels["pod-template-hash"]

    stamp = dt.datetime.now(dt.timezone.utc).isoformat()
    k8s.apps.patch_namespaced_deployment("kestra", NS, {"spec": {"template": {"metadata": {
        "annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}})
    assert k8s.apps.read_namespaced_deployment("kestra", NS).metadata.generation == 2
    wait(kube, lambda: ready(2) and all(
        p.metadata.labels["pod-template-hash"] != old_hash
        for p in _pods(k8s, "app.kubernetes.io/name=kestra")) and len(
        _pods(k8s, "app.kubernetes.io/name=kestra")) == 2)
    rs = {r.metadata.labels["pod-template-hash"]: r
          for r in k8s.apps.list_namespaced_replica_set(NS).items}
    assert rs[old_hash].spec.replicas == 0 and len(rs) == 2
    assert k8s.apps.read_namespaced_deployment("kestra", NS).metadata.annotations[
        "deployment.kubernetes.io/revision"] == "2"
    reasons = [e.reason for e in k8s.core.list_namespaced_event(
        NS, field_selector="involvedObject.name=kestra").items]
    assert "ScalingReplicaSet" in reasons

    scale = k8s.apps.patch_namespaced_deployment_scale("kestra", NS, {"spec": {"replicas": 1}})
    assert scale.spec.replicas == 1
    wait(kube, lambda: len(_pods(k8s, "app.kubernetes.io/name=kestra")) == 1)
    k8s.apps.delete_namespaced_deployment("kestra", NS)
    wait(kube, lambda: not _pods(k8s, "app.kubernetes.io/name=kestra") and
         not k8s.apps.list_namespaced_replica_set(NS).items)


def test_istio_sidecar_pods_are_2_of_2(k8s, kube):
    k8s.apps.create_namespaced_deployment(NS, deployment("kestra", sidecar=True))
    wait(kube, lambda: (k8s.apps.read_namespaced_deployment("kestra", NS).status.ready_replicas
                        or 0) == 1)
    pod = _pods(k8s, "app.kubernetes.io/name=kestra")[0]
    assert [c.name for c in pod.spec.containers] == ["kestra", "istio-proxy"]
    statuses = {c.name: c for c in pod.status.container_statuses}
    assert set(statuses) == {"kestra", "istio-proxy"} and all(c.ready for c in statuses.values())
    assert pod.status.init_container_statuses[0].state.terminated.reason == "Completed"


FAILURES = {
    "crashloop": ("Running", "CrashLoopBackOff", "BackOff", "Back-off restarting failed container"),
    "oom": ("Running", "CrashLoopBackOff", "BackOff", "Back-off restarting failed container"),
    "imagepull": ("Pending", None, "Failed", 'Failed to pull image "kestra/kestra:v1.3.2"'),
    "never-ready": ("Running", None, "Unhealthy", "Readiness probe failed"),
}


@pytest.mark.parametrize("mode", sorted(FAILURES))
def test_failure_modes(k8s, kube, mode):
    phase, waiting, ev_reason, ev_message = FAILURES[mode]
    kube.controller.set_failure("kestra", mode)
    k8s.apps.create_namespaced_deployment(NS, deployment("kestra", sidecar=True))

    def pod():
        pods = _pods(k8s, "app.kubernetes.io/name=kestra")
        return pods[0] if pods else None

    def failing():
        p = pod()
        cs = {c.name: c for c in (p.status.container_statuses or [])} if p else {}
        main = cs.get("kestra")
        if not main or p.status.phase != phase:
            return False
        if mode in ("crashloop", "oom"):
            return main.state.waiting and main.state.waiting.reason == waiting and \
                main.restart_count >= 2
        if mode == "imagepull":
            return main.state.waiting and main.state.waiting.reason in (
                "ErrImagePull", "ImagePullBackOff")
        return main.state.running and not main.ready and cs["istio-proxy"].ready

    wait(kube, failing)
    p = pod()
    main = next(c for c in p.status.container_statuses if c.name == "kestra")
    if mode == "crashloop":
        assert main.last_state.terminated.reason == "Error"
        assert main.last_state.terminated.exit_code == 1
    if mode == "oom":
        assert main.last_state.terminated.reason == "OOMKilled"
        assert main.last_state.terminated.exit_code == 137
    ready = {c.type: c for c in p.status.conditions}["Ready"]
    assert ready.status == "False" and ready.reason == "ContainersNotReady"
    events = k8s.core.list_namespaced_event(
        NS, field_selector=f"involvedObject.name={p.metadata.name},type=Warning").items
    hits = [e for e in events if e.reason == ev_reason and e.message.startswith(ev_message)]
    assert hits and hits[0].involved_object.kind == "Pod"
    assert hits[0].source.component == "kubelet" and hits[0].count >= 1
    d = k8s.apps.read_namespaced_deployment("kestra", NS).status
    assert not d.ready_replicas and not d.available_replicas
    assert {c.type: c.status for c in d.conditions}["Available"] == "False"
    if mode in ("crashloop", "oom"):
        wait(kube, lambda: [e for e in k8s.core.list_namespaced_event(
            NS, field_selector=f"involvedObject.name={p.metadata.name},reason=BackOff").items
            if e.count >= 2])
    kube.controller.set_failure("kestra", None)  # fixed: the pods recover
    wait(kube, lambda: (k8s.apps.read_namespaced_deployment("kestra", NS).status.ready_replicas
                        or 0) == 1)


def test_progress_deadline_exceeded(k8s, kube):
    kube.controller.progress_deadline = 0.1
    kube.controller.set_failure("kestra", "crashloop")
    k8s.apps.create_namespaced_deployment(NS, deployment("kestra"))

    def reason():
        st = k8s.apps.read_namespaced_deployment("kestra", NS).status
        return {c.type: c.reason for c in st.conditions or []}.get("Progressing")

    wait(kube, lambda: reason() == "ProgressDeadlineExceeded")


def test_statefulset_pods(k8s, kube):
    labels = {"app": "kestra-postgres"}
    k8s.apps.create_namespaced_stateful_set(NS, {
        "metadata": {"name": "kestra-postgres"},
        "spec": {"replicas": 2, "serviceName": "kestra-postgres",
                 "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                     {"name": "postgres", "image": "postgres:16"}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                     "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}}]}})
    wait(kube, lambda: (k8s.apps.read_namespaced_stateful_set(
        "kestra-postgres", NS).status.ready_replicas or 0) == 2)
    pods = sorted(p.metadata.name for p in _pods(k8s, "app=kestra-postgres"))
    assert pods == ["kestra-postgres-0", "kestra-postgres-1"]
    st = k8s.apps.read_namespaced_stateful_set("kestra-postgres", NS).status
    assert st.current_revision == st.update_revision and st.updated_replicas == 2
    pvc = k8s.core.read_namespaced_persistent_volume_claim("data-kestra-postgres-0", NS)
    wait(kube, lambda: k8s.core.read_namespaced_persistent_volume_claim(
        "data-kestra-postgres-0", NS).status.phase == "Bound")
    assert pvc.spec.resources.requests == {"storage": "1Gi"}


def test_completed_job_pod_with_live_sidecar(k8s, kube):
    kube.controller.seed_completed_job_pod(NS, "kestra-post-install")
    pod = k8s.core.list_namespaced_pod(NS, label_selector="job-name=kestra-post-install").items[0]
    cs = {c.name: c for c in pod.status.container_statuses}
    assert cs["main"].state.terminated.reason == "Completed"
    assert cs["main"].state.terminated.exit_code == 0
    assert cs["istio-proxy"].state.running and cs["istio-proxy"].ready
    assert sum(c.ready for c in cs.values()) == 1 and len(cs) == 2  # "1/2"
    assert pod.status.phase == "Running"
    assert pod.metadata.owner_references[0].kind == "Job"
    kube.controller.tick()
    job = k8s.batch.read_namespaced_job("kestra-post-install", NS)
    assert job.status.active == 1 and not job.status.succeeded
    assert len(k8s.core.list_namespaced_pod(NS, label_selector="job-name=kestra-post-install")
               .items) == 1


def test_jobs_complete_or_fail(k8s, kube):
    def job(name, backoff=6):
        return {"metadata": {"name": name}, "spec": {"backoffLimit": backoff, "template": {
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": "main", "image": "busybox:1.36"}]}}}}

    kube.controller.set_failure("bad", "fail")
    k8s.batch.create_namespaced_job(NS, job("good"))
    k8s.batch.create_namespaced_job(NS, job("bad", backoff=1))

    def cond(name):
        st = k8s.batch.read_namespaced_job(name, NS).status
        return {c.type for c in st.conditions or [] if c.status == "True"}

    wait(kube, lambda: "Complete" in cond("good") and "Failed" in cond("bad"))
    assert k8s.batch.read_namespaced_job("good", NS).status.succeeded == 1
    assert k8s.batch.read_namespaced_job("bad", NS).status.failed == 2
    bad = k8s.core.list_namespaced_pod(NS, label_selector="job-name=bad").items
    assert {p.status.phase for p in bad} == {"Failed"}
    from kubernetes.client.rest import ApiException
    with pytest.raises(ApiException) as e:  # restartPolicy Always is not allowed for Jobs
        bad_job = job("x")
        bad_job["spec"]["template"]["spec"]["restartPolicy"] = "Always"
        k8s.batch.create_namespaced_job(NS, bad_job)
    assert e.value.status == 422


def test_pod_logs(k8s, kube):
    from kubernetes.client.rest import ApiException

    k8s.core.create_namespaced_pod(NS, {
        "metadata": {"name": "p", "labels": {"sidecar.istio.io/inject": "true"}},
        "spec": {"containers": [{"name": "kestra", "image": "kestra/kestra:v1.3.2"}]}})
    wait(kube, lambda: k8s.core.read_namespaced_pod("p", NS).status.phase == "Running")
    kube.store.set_log(NS, "p", "kestra", "line1\nline2\nERROR boom\n")
    kube.store.set_log(NS, "p", "istio-proxy", "envoy ready\n")
    assert k8s.core.read_namespaced_pod_log("p", NS, container="kestra") == \
        "line1\nline2\nERROR boom\n"
    assert k8s.core.read_namespaced_pod_log("p", NS, container="kestra", tail_lines=1) == \
        "ERROR boom\n"
    assert kube.requests[-1].query["tailLines"] == "1"
    assert k8s.core.read_namespaced_pod_log("p", NS, container="istio-proxy") == "envoy ready\n"
    with pytest.raises(ApiException) as e:
        k8s.core.read_namespaced_pod_log("p", NS)
    assert e.value.status == 400
    assert "a container name must be specified for pod p, choose one of: [kestra istio-proxy]" \
        in status_of(e.value)["message"]
    with pytest.raises(ApiException) as e:
        k8s.core.read_namespaced_pod_log("p", NS, container="kestra", previous=True)
    assert e.value.status == 400
    kube.deny("get", "pods/log", NS)
    with pytest.raises(ApiException) as e:
        k8s.core.read_namespaced_pod_log("p", NS, container="kestra")
    assert e.value.status == 403


def test_crashloop_previous_logs(k8s, kube):
    kube.controller.set_failure("kestra", "crashloop")
    k8s.apps.create_namespaced_deployment(NS, deployment("kestra"))
    wait(kube, lambda: any((c.restart_count or 0) >= 1 for p in _pods(
        k8s, "app.kubernetes.io/name=kestra") for c in p.status.container_statuses or []))
    name = _pods(k8s, "app.kubernetes.io/name=kestra")[0].metadata.name
    kube.store.set_log(NS, name, "kestra", "Caused by: FATAL password authentication failed\n",
                       previous=True)
    assert "FATAL" in k8s.core.read_namespaced_pod_log(name, NS, container="kestra",
                                                       previous=True)


def test_watch_streams_added_events(k8s, kube):
    from kubernetes import watch

    k8s.core.create_namespaced_config_map(NS, {"metadata": {"name": "first"}})
    seen = []
    w = watch.Watch()
    threading.Timer(0.1, lambda: kube.store.create(
        {"kind": "ConfigMap", "metadata": {"name": "second", "namespace": NS}})).start()
    for ev in w.stream(k8s.core.list_namespaced_config_map, NS, timeout_seconds=3):
        seen.append((ev["type"], ev["object"].metadata.name))
        if ev["object"].metadata.name == "second":
            w.stop()
    assert seen == [("ADDED", "first"), ("ADDED", "second")]


def test_namespace_delete_cascades(k8s, kube):
    k8s.core.create_namespace({"metadata": {"name": "scratch"}})
    k8s.core.create_namespaced_config_map("scratch", {"metadata": {"name": "c"}})
    ns = k8s.core.delete_namespace("scratch")  # the real server answers with the Namespace
    assert ns["kind"] == "Namespace" and ns["status"]["phase"] == "Terminating"
    assert kube.store.get("configmaps", "scratch", "c") is None
    assert kube.store.get("namespaces", None, "scratch") is None


def test_global_kubeconfig_loading(kube, monkeypatch):
    """The way product code loads it: load_kube_config(config_file, context) + default client."""
    from kubernetes import client, config

    monkeypatch.setattr(client.Configuration, "_default", None)
    config.load_kube_config(config_file=str(kube.kubeconfig), context="fake")
    assert config.list_kube_config_contexts(str(kube.kubeconfig))[1]["context"]["namespace"] == NS
    names = [n.metadata.name for n in client.CoreV1Api().list_namespace().items]
    assert {"default", "kube-system", NS} <= set(names)
    assert kube.requests[-1].path == "/api/v1/namespaces"


def test_unschedulable_pod_and_events(k8s, kube):
    kube.controller.set_failure("kestra", "unschedulable")
    k8s.apps.create_namespaced_deployment(NS, deployment("kestra"))

    def events():
        return k8s.core.list_namespaced_event(NS, field_selector="reason=FailedScheduling").items

    wait(kube, lambda: events())
    pod = _pods(k8s, "app.kubernetes.io/name=kestra")[0]
    assert pod.status.phase == "Pending" and not pod.spec.node_name
    cond = pod.status.conditions[0]
    assert (cond.type, cond.status, cond.reason) == ("PodScheduled", "False", "Unschedulable")
    assert events()[0].source.component == "default-scheduler"


def test_explicit_ticks_without_thread(tmp_path):
    kube = FakeKube(controller=False, ready_delay=0).start()
    try:
        kube.store.create({**deployment("kestra", replicas=2), "metadata": {
            "name": "kestra", "namespace": NS}})
        assert not kube.store.list("pods", NS)
        kube.controller.tick()
        st = kube.store.get("deployments", NS, "kestra")["status"]
        assert st["readyReplicas"] == 2 and st["observedGeneration"] == 1
    finally:
        kube.stop()


def test_server_side_apply_and_cronjob_trigger(k8s, kube):
    from kubernetes.client.rest import ApiException

    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
            "data": {"a": "1"}}
    with pytest.raises(ApiException) as e:  # fieldManager is required for apply
        k8s.core.patch_namespaced_config_map("cfg", NS, body,
                                             _content_type="application/apply-patch+yaml")
    assert e.value.status == 422
    for data in ({"a": "1"}, {"a": "2"}):
        k8s.core.patch_namespaced_config_map("cfg", NS, {**body, "data": data},
                                             field_manager="kestra-ops",
                                             _content_type="application/apply-patch+yaml")
    assert k8s.core.read_namespaced_config_map("cfg", NS).data == {"a": "2"}
    k8s.batch.create_namespaced_cron_job(NS, {"metadata": {"name": "backup"}, "spec": {
        "schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "OnFailure", "containers": [{"name": "dump", "image": "pg:16"}]}}}}}})
    job = kube.controller.trigger_cronjob(NS, "backup", "backup-manual")
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    wait(kube, lambda: k8s.batch.read_namespaced_job("backup-manual", NS).status.succeeded == 1)
