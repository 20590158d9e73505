"""The version catalogue: its facts load and are checked, and paths between versions."""

from __future__ import annotations

import copy

import pytest

from kestra_ops.errors import InvalidInput
from kestra_ops.upgrades import catalogue as c
from kestra_ops.upgrades.path import plan_path
from kestra_ops.upgrades.version import Version, parse, split_tag, try_parse


@pytest.fixture(scope="module")
def cat():
    return c.load()


def test_versions_and_tags():
    assert parse("1.3.2") == parse("v1.3.2") == Version(1, 3, 2)
    assert split_tag("v2.0.0-slim") == (Version(2, 0, 0), "slim")
    assert split_tag("v1.3.2-no-plugins") == (Version(1, 3, 2), "no-plugins")
    assert try_parse("latest") is None and try_parse("1.3") is None and try_parse(None) is None
    assert Version(1, 3, 22) > Version(1, 3, 3) and Version(2, 0, 0).tag("slim") == "v2.0.0-slim"
    with pytest.raises(InvalidInput, match="not a Kestra version"):
        parse("1.3.2; rm -rf /")


def test_targets_are_the_latest_of_each_supported_line(cat):
    assert cat.targets == ("1.3", "2.0")
    assert cat.target("1.3") == Version(1, 3, 22)
    assert cat.target("2.0") == Version(2, 0, 8)
    assert cat.target("v1.3.5") == Version(1, 3, 5)
    for bad, why in (("2.1.0", "not on a supported line"), ("1.3.99", "not in the version"),
                     ("9", "not a Kestra version")):
        with pytest.raises(InvalidInput, match=why):
            cat.target(bad)


def test_every_fact_has_a_source_and_unsure_means_irreversible(cat):
    for r in cat.releases:
        assert r.sources, r.name
        for fact in (*r.migrations, *r.config, *r.chart, *r.flows, *r.behaviour):
            assert fact.source.strip(), (r.name, fact)
        if r.unsure or "UNSURE" in r.reversibility or "unsure" in r.reversibility:
            assert not r.reversible, r.name
        for m in r.migrations:
            if m.kind == "manual":
                assert m.command[:1] == ("/app/kestra",) and m.when == "before-release"


def test_patch_path_is_one_step(cat):
    steps = plan_path(cat, parse("1.3.2"), parse("1.3.22"))
    assert [s.name for s in steps] == ["1.3.2 -> 1.3.22"]
    assert not steps[0].manual  # Flyway at start-up only
    assert steps[0].migrations[0].kind == "automatic"


def test_two_point_oh_goes_through_the_latest_1_3(cat):
    steps = plan_path(cat, parse("1.3.2"), cat.target("2.0"))
    assert [s.name for s in steps] == ["1.3.2 -> 1.3.22", "1.3.22 -> 2.0.8"]
    jump = steps[1]
    assert not jump.reversible and jump.irreversible_because
    assert [m.id for m in jump.manual] == ["migrate-plan", "migrate-run"]
    assert [m.stop for m in jump.manual] == [False, True]
    ids = {f.id for f in jump.flows}
    assert {"foreach-removed", "trigger-conditions-to-when", "dag-fail-fast"} <= ids
    assert {k.key for k in jump.config} >= {"kestra.plugins.defaults"}
    # from the latest 1.3 the jump is direct
    assert [s.name for s in plan_path(cat, parse("1.3.22"), parse("2.0.0"))] == \
        ["1.3.22 -> 2.0.0"]


def test_from_1_0_the_metadata_migrations_run(cat):
    steps = plan_path(cat, parse("1.0.4"), parse("1.3.22"))
    assert [m.id for m in steps[0].manual] == ["metadata-kv", "metadata-nsfiles"]


def test_no_downgrade_no_unknown_start(cat):
    assert plan_path(cat, parse("1.3.22"), parse("1.3.22")) == []
    with pytest.raises(InvalidInput, match="never goes back"):
        plan_path(cat, parse("2.0.8"), parse("1.3.22"))
    with pytest.raises(InvalidInput, match="older than the version catalogue"):
        plan_path(cat, parse("0.24.3"), parse("1.3.22"))


def _raw():
    import yaml

    return yaml.safe_load(c.CATALOGUE.read_text())


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["releases"][1].pop("sources"), "every fact needs its source"),
    (lambda d: d["releases"][1]["migrations"][1].pop("command"), "needs its command"),
    (lambda d: d["releases"][1]["flows"][0].update(detect={"type": "x", "path": "y"}),
     "exactly one of"),
    (lambda d: d["releases"][1]["flows"][0].update(detect={"pebble": "("}), "pebble pattern"),
    (lambda d: d["releases"][1].update(reversible="maybe"), "true or false"),
    (lambda d: d["releases"][2].update(version="1.1.0"), "overlap"),
    (lambda d: d["releases"][-1].update(requires_from="1.9.9"), "not in the catalogue"),
    (lambda d: d.update(format=2), "format: 1"),
])
def test_a_malformed_catalogue_names_the_entry(mutate, message):
    data = copy.deepcopy(_raw())
    mutate(data)
    with pytest.raises(c.CatalogueError, match=message):
        c.parse_catalogue(data, "test.yaml")
