"""Kestra's storage layout as workflows/backup/kestra_storage.py derives it (sources cited there)
and the versions read from a Kestra pod."""

from __future__ import annotations

from kestra_ops.workflows.backup import kestra_storage as ks
from kestra_ops.workflows.backup.versions import from_pods


def test_kv_keys_carry_the_revision_suffix_above_one():
    assert ks.kv_key("company.team", "api_token", 1) == "company/team/_kv/api_token.ion"
    assert ks.kv_key("company.team", "api_token", 3) == "company/team/_kv/api_token.ion.v3"


def test_namespace_file_keys_strip_leading_slashes_and_version_files_not_folders():
    assert ks.file_key("a.b.c", "/scripts/run.py", 1) == "a/b/c/_files/scripts/run.py"
    assert ks.file_key("a.b.c", "./scripts/run.py", 2) == "a/b/c/_files/scripts/run.py.v2"
    assert ks.file_key("a", "/scripts/", 5) == "a/_files/scripts/"


def test_what_is_backed_up():
    assert ks.kind("company/team/_kv/x.ion") == ks.KV
    assert ks.kind("company/team/_files/_kv/x") == ks.FILES  # the first segment decides
    assert ks.kind("company/team/flow/executions/1/tasks/t/r/out.ion") == ks.EXECUTIONS
    assert ks.kind("company/team/flow/states/s/x.ion") is None
    assert ks.wanted("company/team/_kv/x.ion", include_executions=False)
    assert not ks.wanted("company/team/flow/executions/1/o.ion", include_executions=False)
    assert ks.wanted("company/team/flow/executions/1/o.ion", include_executions=True)
    assert ks.wanted("company/team/", include_executions=False)  # a directory object
    assert not ks.wanted("company/team/flow/states/s/x.ion", include_executions=True)


def test_versions_from_the_running_kestra_pod():
    pods = [{"metadata": {"labels": {"helm.sh/chart": "kestra-0.1.0"}},
             "status": {"phase": "Running", "containerStatuses": [
                 {"name": "istio-proxy", "image": "istio/proxyv2", "imageID": "x@sha256:aa"},
                 {"name": "kestra", "image": "kestra/kestra:v1.3.2",
                  "imageID": "docker.io/kestra/kestra@sha256:0123abcd"}]}}]
    assert from_pods(pods) == {"chart": "kestra-0.1.0", "image": "kestra/kestra:v1.3.2",
                               "image_digest": "sha256:0123abcd"}
    assert from_pods([]) == {}
