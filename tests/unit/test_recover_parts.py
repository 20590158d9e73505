"""The pure parts of a recovery and a drill (issue 14): the canary flow, the pick of what it
reads, the count comparison, and the values that point a drill's Kestra at scratch places only."""

from __future__ import annotations

import yaml

from kestra_ops.workflows.backup import canary
from kestra_ops.workflows.backup.drill_namespace import scratch_namespace, scratch_values
from kestra_ops.values.merge import load_layers


def ref(table: str, namespace: str, name: str) -> dict:
    return {"table": table, "namespace": namespace, "name": name, "version": 1, "key": "x"}


class Env:
    namespace = "hyperplane-kestra"


def test_the_canary_reads_one_kv_value_and_one_namespace_file():
    refs = {"refs": [ref("kv_metadata", "b.team", "z"), ref("kv_metadata", "a.team", "k1"),
                     ref("namespace_file_metadata", "a.team", "dir/"),
                     ref("namespace_file_metadata", "a.team", "scripts/run.py")]}
    kv, file = canary.pick(refs)
    assert kv == ("a.team", "k1") and file == ("a.team", "scripts/run.py")
    flow = yaml.safe_load(canary.canary_source("canary-1", "a.team", kv, file))
    assert flow["id"] == "canary-1" and flow["namespace"] == "a.team"
    types = [t["type"] for t in flow["tasks"]]
    assert types == ["io.kestra.plugin.core.kv.Get",
                     "io.kestra.plugin.core.namespace.DownloadFiles",
                     "io.kestra.plugin.core.execution.Assert"]
    assert flow["tasks"][0]["key"] == "k1" and flow["tasks"][0]["errorOnMissing"] is True
    assert flow["tasks"][1]["files"] == ["scripts/run.py"]


def test_a_hostile_key_cannot_break_the_canary_yaml():
    key = 'x"\n  - id: evil\n    type: io.kestra.plugin.scripts.shell.Commands'
    flow = yaml.safe_load(canary.canary_source("c", "ns", ("ns", key), None))
    assert [t["id"] for t in flow["tasks"]] == ["read_kv"] and flow["tasks"][0]["key"] == key


def test_nothing_to_read_is_a_skip_not_a_pass():
    assert canary.pick({}) == (None, None)
    assert canary.run_canary(object(), {"refs": []}).status == "skip"


def test_counts_compare_with_the_set():
    same = canary.compare({"flows": 3, "kv": 2}, {"flows": 3, "kv": 2, "executions": 9})
    assert same.status == "pass"
    differ = canary.compare({"flows": 3, "kv": 2}, {"flows": 3, "kv": 1})
    assert differ.status == "fail" and "kv: set 2, restored 1" in differ.reason
    assert canary.compare(None, {"flows": 1}).status == "warn"
    # executions only grow once the restored Kestra runs; fewer than the set's is a loss
    assert canary.compare({"executions": 2}, {"executions": 5}).status == "pass"
    lost = canary.compare({"executions": 2}, {"executions": 1})
    assert lost.status == "fail" and "executions: set 2, restored 1" in lost.reason


def test_a_drill_never_points_at_the_live_database_or_bucket(tmp_path):
    values = {"datasources": {"postgres": {"url": "jdbc:postgresql://kestra-postgres:5432/kestra"}}}
    over = scratch_values(Env(), values, "kestra_drill_1", "kestra-drill-abc")
    want = "jdbc:postgresql://kestra-postgres.hyperplane-kestra.svc:5432/kestra_drill_1"
    # the recovery hands helm the set's values, then these: layered as helm layers them
    live = tmp_path / "set-values.yaml"
    live.write_text(yaml.safe_dump({
        "datasources": {"default": {"url": "live", "username": "kestra"},
                        "postgres": {"url": "live"}},
        "kestra": {"datasources": {"postgres": {"url": "live"}},
                   "storage": {"minio": {"bucket": "kestra-dev", "port": 9000}}}}))
    drill = tmp_path / "recovery.yaml"
    drill.write_text(yaml.safe_dump(over))
    merged = load_layers([live, drill]).plain
    urls = [merged["datasources"]["default"]["url"], merged["datasources"]["postgres"]["url"],
            merged["kestra"]["datasources"]["postgres"]["url"]]
    assert urls == [want] * 3 and merged["datasources"]["default"]["username"] == "kestra"
    assert merged["kestra"]["storage"]["minio"] == {"bucket": "kestra-drill-abc", "port": 9000}
    assert over["postgres"]["enabled"] is False and over["backup"]["enabled"] is False


def test_scratch_namespaces_are_dns_labels_and_unique():
    from kestra_ops.config_schema import DNS_LABEL

    names = {scratch_namespace() for _ in range(20)}
    assert len(names) == 20 and all(DNS_LABEL.match(n) and len(n) <= 63 for n in names)
