"""The values rule of the chart's distributed mode: 2+ webserver pods outside dev."""

from __future__ import annotations

import pytest

from kestra_ops.values.rules_platform import ALL_RULES, distributed_webserver, run_rules

RULE = "kestra/distributed-webserver-replicas"


def hits(values: dict, env: str | None) -> list:
    return [h for h in run_rules(values, env) if h.rule == RULE]


def test_the_rule_is_registered():
    assert distributed_webserver in ALL_RULES


@pytest.mark.parametrize("env", ["staging", "production", None])
def test_one_webserver_outside_dev_is_an_error(env):
    [hit] = hits({"mode": "distributed", "distributed": {"webserver": {"replicas": 1}}}, env)
    assert hit.severity == "error"
    assert hit.path == ("distributed", "webserver", "replicas")
    assert "is 1" in hit.message


@pytest.mark.parametrize("values, env", [
    ({"mode": "distributed", "distributed": {"webserver": {"replicas": 1}}}, "dev"),
    ({"mode": "distributed", "distributed": {"webserver": {"replicas": 2}}}, "production"),
    ({"mode": "distributed", "distributed": {"webserver": {"replicas": 3}}}, "staging"),
    ({"mode": "distributed"}, "production"),  # the chart's default: 2
    ({"mode": "standalone", "distributed": {"webserver": {"replicas": 1}}}, "production"),
    ({"distributed": {"webserver": {"replicas": 0}}}, "production"),  # mode defaults to standalone
    ({"mode": "distributed", "distributed": {"webserver": {"replicas": "2"}}}, "production"),
])
def test_no_finding(values, env):
    assert hits(values, env) == []


def test_zero_webservers_is_an_error_too():
    [hit] = hits({"mode": "distributed", "distributed": {"webserver": {"replicas": 0}}},
                 "production")
    assert "is 0" in hit.message


def autoscaling_hits(worker: dict) -> list:
    values = {"mode": "distributed", "distributed": {"worker": worker}}
    return [h for h in run_rules(values, "production") if h.rule == "kestra/worker-autoscaling"]


def test_worker_autoscaling_needs_a_cpu_request_and_an_ordered_range():
    on = {"enabled": True, "minReplicas": 2, "maxReplicas": 4}
    [hit] = autoscaling_hits({"autoscaling": on})
    assert "no CPU request" in hit.message and hit.path == ("distributed", "worker", "resources")
    cpu = {"resources": {"requests": {"cpu": "1"}}}
    assert autoscaling_hits({**cpu, "autoscaling": on}) == []
    [hit] = autoscaling_hits({**cpu, "autoscaling": {**on, "minReplicas": 5}})
    assert "minReplicas (5) is above maxReplicas (4)" in hit.message
    assert autoscaling_hits({"autoscaling": {**on, "enabled": False}}) == []
