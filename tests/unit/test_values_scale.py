"""The values rules of kestra_ops.values.rules_scale: the database connection budget of the
Kestra pods' pools and the executor/scheduler counts of distributed mode."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kestra_ops.values.rules_platform import ALL_RULES, run_rules
from kestra_ops.values.rules_scale import (CHART_REPLICAS, CHART_WORKER_MAX, connection_budget,
                                           distributed_replicas)

CHART_VALUES = Path(__file__).resolve().parents[2] / "charts" / "kestra" / "values.yaml"
BUDGET = "kestra/db-connection-budget"
REPLICAS = "kestra/distributed-replicas"
TWO_POOLS = {"default": {"url": "jdbc:postgresql://kestra-postgres:5432/kestra"},
             "postgres": {"url": "jdbc:postgresql://kestra-postgres:5432/kestra"}}


def hits(values: dict, rule: str, env: str | None = "production") -> list:
    return [h for h in run_rules(values, env) if h.rule == rule]


def sized(size, *names: str) -> dict:
    return {n: {**TWO_POOLS.get(n, {}), "maximum-pool-size": size} for n in names}


def test_the_rules_are_registered():
    assert connection_budget in ALL_RULES and distributed_replicas in ALL_RULES


def test_the_chart_defaults_the_rules_assume_are_the_charts():
    chart = yaml.safe_load(CHART_VALUES.read_text())
    assert chart["standalone"]["replicas"] == CHART_REPLICAS["standalone"]
    for component in ("webserver", "executor", "scheduler", "worker"):
        assert chart["distributed"][component]["replicas"] == CHART_REPLICAS[component]
    assert chart["distributed"]["worker"]["autoscaling"]["maxReplicas"] == CHART_WORKER_MAX
    assert chart["postgres"]["enabled"] is True  # the bundled database is the default


# ------------------------------------------------------------------ the connection budget

def test_standalone_with_two_default_pools_fits():
    # 1 pod (2 during a rollout) x 2 pools x 10 = 40 <= 94
    assert hits({"datasources": TWO_POOLS}, BUDGET) == []


def test_distributed_defaults_with_two_default_pools_are_an_error():
    [hit] = hits({"mode": "distributed", "datasources": TWO_POOLS}, BUDGET)
    assert hit.severity == "error" and hit.path == ("datasources",)
    # webserver 2 + executor 1 + scheduler 1 + worker 2 = 6 pods x 2 pools x 10
    assert "may open 120 database connections (6 pods x" in hit.message
    assert "HikariCP default" in hit.message and "accepts 94" in hit.message
    assert "maximum-pool-size" in hit.hint


def test_the_autoscalers_maximum_counts_for_workers():
    values = {"mode": "distributed", "datasources": sized(4, "default", "postgres"),
              "distributed": {"worker": {"replicas": 1, "autoscaling": {
                  "enabled": True, "maxReplicas": 12}}}}
    [hit] = hits(values, BUDGET)  # 2 + 1 + 1 + 12 = 16 pods x 8 = 128 > 94
    assert "128 database connections (16 pods" in hit.message and hit.severity == "error"


def test_a_rollout_over_budget_is_a_warning():
    # 6 pods x 2 x 7 = 84 fits; 10 pods during a rollout x 14 = 140 does not
    values = {"mode": "distributed", "datasources": sized(7, "default", "postgres")}
    [hit] = hits(values, BUDGET)
    assert hit.severity == "warning"
    assert "during a rollout" in hit.message and "140" in hit.message and "(10 pods" in hit.message


def test_pools_sized_for_the_budget_pass_and_camel_case_is_read():
    values = {"mode": "distributed",
              "datasources": {"default": {"maximumPoolSize": 4},
                              "postgres": {"maximum-pool-size": 4}}}
    assert hits(values, BUDGET) == []  # 10 pods x 8 = 80 <= 94


def test_an_unreadable_pool_size_counts_as_hikaris_default():
    values = {"mode": "distributed",
              "datasources": {"default": {"maximum-pool-size": "${POOL}"},
                              "postgres": {"maximum-pool-size": 3}}}
    [hit] = hits(values, BUDGET)  # 6 pods x (10 + 3) = 78 fits; 10 x 13 = 130 during rollouts
    assert hit.severity == "warning" and "10 (datasources.default, HikariCP default)" in hit.message


def test_dev_downgrades_the_error():
    [hit] = hits({"mode": "distributed", "datasources": TWO_POOLS}, BUDGET, env="dev")
    assert hit.severity == "warning"


@pytest.mark.parametrize("values", [
    {"mode": "distributed", "datasources": TWO_POOLS, "postgres": {"enabled": False}},
    {"mode": "distributed", "datasources": TWO_POOLS, "database": {"mode": "external"}},
    {"mode": "distributed", "datasources": TWO_POOLS, "database": {"mode": "cloudnativepg"}},
    {"mode": "distributed"},  # no datasource at all: the datasource rules report it
    {"mode": "distributed", "datasources": TWO_POOLS,
     "distributed": {"webserver": {"replicas": "2"}}},  # the schema reports the type
])
def test_no_budget_judged_without_a_known_max_connections_or_readable_counts(values):
    assert hits(values, BUDGET) == []


# ------------------------------------------------------------------ executor / scheduler

@pytest.mark.parametrize("component", ["executor", "scheduler"])
def test_zero_executors_or_schedulers_is_an_error_outside_dev(component):
    values = {"mode": "distributed", "distributed": {component: {"replicas": 0}}}
    [hit] = hits(values, REPLICAS)
    assert hit.severity == "error" and hit.path == ("distributed", component, "replicas")
    assert "is 0" in hit.message
    [dev] = hits(values, REPLICAS, env="dev")
    assert dev.severity == "warning"


@pytest.mark.parametrize("component", ["executor", "scheduler"])
def test_more_than_one_is_a_warning_citing_kestras_jdbc_architecture(component):
    [hit] = hits({"mode": "distributed", "distributed": {component: {"replicas": 2}}}, REPLICAS)
    assert hit.severity == "warning" and "is 2" in hit.message
    assert "where high availability is not required" in hit.message


@pytest.mark.parametrize("values", [
    {"mode": "distributed"},  # the chart's 1 and 1
    {"mode": "distributed", "distributed": {"executor": {"replicas": 1},
                                            "scheduler": {"replicas": 1}}},
    {"distributed": {"executor": {"replicas": 0}}},  # standalone: the key is not used
    {"mode": "distributed", "distributed": {"executor": {"replicas": True}}},  # schema's
])
def test_no_replica_finding(values):
    assert hits(values, REPLICAS) == []
