"""The restore canary (issue 14) against the fake Kestra over real HTTP: it reads the KV value and
the namespace file the set references, passes only when both are served, deletes its flow, and
the counts say what the server serves."""

from __future__ import annotations

import pytest

from kestra_ops.workflows.backup import canary
from tests.integration.test_kestra_client_storage import client, kestra  # noqa: F401 - fixtures

NS = "company.team"
REFS = {"refs": [{"table": "kv_metadata", "namespace": NS, "name": "db_host"},
                 {"table": "namespace_file_metadata", "namespace": NS,
                  "name": "/scripts/etl.sql"}]}


def test_the_canary_passes_when_both_reads_succeed_and_leaves_no_flow(kestra, client):
    client.put_kv(NS, "db_host", "pg.internal")
    client.put_namespace_file(NS, "scripts/etl.sql", b"select 1;\n")
    item = canary.run_canary(client, REFS, timeout=20)
    assert item.status == "pass", item
    assert "KV company.team/db_host" in item.reason and "scripts/etl.sql" in item.reason
    assert list(client.search_flows()) == []  # the canary flow was deleted
    assert kestra.calls("DELETE", r"/flows/company\.team/canary-")


@pytest.mark.parametrize("missing", ["kv", "file"])
def test_the_canary_fails_when_either_is_missing(kestra, client, missing):
    if missing != "kv":
        client.put_kv(NS, "db_host", "pg.internal")
    if missing != "file":
        client.put_namespace_file(NS, "scripts/etl.sql", b"select 1;\n")
    item = canary.run_canary(client, REFS, timeout=20)
    assert item.status == "fail" and "not readable" in item.reason, item
    assert list(client.search_flows()) == []


def test_counts_are_what_the_server_serves(kestra, client):
    client.create_flow(f"id: one\nnamespace: {NS}\ntasks:\n  - id: log\n"
                       "    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
    client.put_kv(NS, "a", 1)
    client.put_kv(NS, "b", 2)
    client.put_namespace_file(NS, "x/y.txt", b"y")
    got = canary.counts(client)
    assert got == {"flows": 1, "executions": 0, "kv": 2, "namespace_files": 1}


def test_counts_see_namespaces_without_flows_through_the_sets_references(kestra, client):
    client.put_kv("only.kv", "k", "v")
    assert canary.counts(client)["kv"] == 0  # Kestra OSS lists namespaces that hold flows
    refs = {"refs": [{"table": "kv_metadata", "namespace": "only.kv", "name": "k"}]}
    assert canary.counts(client, refs)["kv"] == 1
