"""The version catalogue's values rule (kestra_ops/upgrades/values_rules.py): the config keys a
Kestra version removed or renamed, found in layered values files at their file:line, for the
version of image.tag (and for a version given outright: version_hits)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kestra_ops.upgrades import catalogue as catalogue_mod
from kestra_ops.upgrades import values_rules
from kestra_ops.upgrades.catalogue import load
from kestra_ops.upgrades.config_view import view
from kestra_ops.upgrades.values_rules import version_hits
from kestra_ops.upgrades.version import Version, parse
from kestra_ops.values.findings import exit_code
from kestra_ops.values.validate import validate_layers

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "charts" / "kestra" / "values.schema.json"
LAYERS = [ROOT / "values" / "base.yaml", ROOT / "values" / "production.yaml"]
VERSION_RULES = {"kestra/removed-key", "kestra/renamed-key", "kestra/unknown-version",
                 "kestra/unpinned-image"}


def key_changes() -> list[tuple[object, object]]:
    """(release, change) of every removed or renamed config key in the catalogue."""
    return [(r, c) for r in load().releases for c in r.config if c.change in ("removed", "renamed")]


CHANGES = key_changes()


def overlay(tmp_path: Path, tag: str, key: str | None = None, value: str = "{x: 1}") -> Path:
    """An overlay setting image.tag (line 2) and, when given, the dotted ``key`` to ``value``
    (its last part on line 2 + its depth)."""
    lines = ["image:", f'  tag: "{tag}"']
    if key:
        parts = key.split(".")
        for depth, part in enumerate(parts):
            lines.append("  " * depth + part + ":" + (f" {value}" if depth == len(parts) - 1 else ""))
    path = tmp_path / "override.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def findings(path: Path, env: str = "production"):
    report = validate_layers([*LAYERS, path], SCHEMA, env, use_cache=False)
    return report, [f for f in report.findings if f.rule in VERSION_RULES]


def test_the_catalogue_has_removed_and_renamed_keys_to_check():
    assert {c.change for _, c in CHANGES} == {"removed", "renamed"}


@pytest.mark.parametrize("release, change", CHANGES, ids=lambda x: getattr(x, "key", ""))
def test_a_key_the_image_version_lost_is_an_error_at_its_line(tmp_path, release, change):
    path = overlay(tmp_path, f"v{release.last}-slim", change.key)
    report, found = findings(path)
    rule = f"kestra/{change.change}-key"
    [hit] = [f for f in found if f.rule == rule]
    depth = len(change.path)
    assert (hit.severity, hit.location.file, hit.location.line, hit.location.col) == (
        "error", str(path), 2 + depth, 1 + 2 * (depth - 1))
    assert hit.path == "$." + change.key
    assert change.key in hit.message and f"Kestra {release.name}" in hit.message
    assert change.source in hit.message
    if change.change == "renamed":
        assert change.to in hit.hint
    assert exit_code([report]) == 1


@pytest.mark.parametrize("release, change", CHANGES, ids=lambda x: getattr(x, "key", ""))
def test_the_same_key_before_that_release_is_no_finding(tmp_path, release, change):
    before = max(r.last for r in load().releases if r.last < release.first)
    for tag in (f"v{before}", "v1.3.2", "v1.3.2-no-plugins"):
        report, found = findings(overlay(tmp_path, tag, change.key))
        assert found == [], (tag, found)


def test_a_key_set_to_null_is_not_set(tmp_path):
    report, found = findings(overlay(tmp_path, "v2.0.8", "kestra.plugins.defaults", "null"))
    assert found == [] and report.errors == 0


def test_every_later_version_keeps_the_finding_even_uncatalogued(tmp_path):
    report, found = findings(overlay(tmp_path, "v2.1.0", "kestra.server.basicAuth"))
    assert {(f.rule, f.severity, f.location.line) for f in found} == {
        ("kestra/unknown-version", "warning", 2), ("kestra/renamed-key", "error", 5)}


def test_an_unknown_version_is_a_warning_at_the_tag(tmp_path):
    path = overlay(tmp_path, "v2.1.0")
    report, found = findings(path)
    [hit] = found
    assert (hit.rule, hit.severity, hit.location.file, hit.location.line) == (
        "kestra/unknown-version", "warning", str(path), 2)
    assert "not in the version catalogue: chart and values support unverified" in hit.message
    assert "2.0: up to 2.0.8" in hit.hint
    assert exit_code([report]) == 0


def test_an_empty_tag_is_no_finding(tmp_path):
    """Empty means the chart's appVersion, which the rules do not know."""
    report, found = findings(overlay(tmp_path, "", "kestra.server.basicAuth"))
    assert found == []


@pytest.mark.parametrize("tag", ["latest", "develop", "v2.0"])
def test_a_tag_that_is_not_a_version_is_an_unpinned_warning_only(tmp_path, tag):
    report, found = findings(overlay(tmp_path, tag, "kestra.plugins.defaults"))
    assert [(f.rule, f.severity, f.location.line) for f in found] == [
        ("kestra/unpinned-image", "warning", 2)]
    assert repr(tag) in found[0].message


def test_the_shipped_values_have_no_version_finding():
    for env, layers in (("production", LAYERS), ("dev", [LAYERS[0], ROOT / "values" / "dev.yaml"])):
        report = validate_layers(layers, SCHEMA, env, use_cache=False)
        assert report.findings == [], report.findings


def test_version_hits_checks_a_target_version():
    values = {"image": {"tag": "v1.3.2"},
              "kestra": {"server": {"basicAuth": {"username": "a@b.c"}},
                         "plugins": {"defaults": [{"type": "x"}]}}}
    assert version_hits(values, parse("1.3.22"), "production") == []
    hits = version_hits(values, Version(2, 0, 8), "production")
    assert {(h.rule, h.path) for h in hits} == {
        ("kestra/renamed-key", ("kestra", "server", "basicAuth")),
        ("kestra/removed-key", ("kestra", "plugins", "defaults"))}
    assert all("target is Kestra 2.0.8" in h.message for h in hits)
    rules = [h.rule for h in version_hits(values, Version(2, 1, 0), None)]
    assert rules[0] == "kestra/unknown-version" and len(rules) == 3
    assert version_hits("not a mapping", Version(2, 0, 8), None) == []


def test_the_cache_key_names_the_catalogue_the_rule_reads():
    assert values_rules.CATALOGUE_FILE == catalogue_mod.CATALOGUE


def test_an_edited_catalogue_is_not_answered_from_the_cache(tmp_path, monkeypatch):
    """The validate cache's key holds the catalogue's bytes: a key the catalogue starts to
    list is found on the next run although the values did not change."""
    monkeypatch.setenv("KESTRA_OPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("KESTRA_OPS_NO_CACHE", raising=False)
    copy = tmp_path / "catalogue.yaml"
    shutil.copyfile(catalogue_mod.CATALOGUE, copy)
    monkeypatch.setattr(catalogue_mod, "CATALOGUE", copy)
    monkeypatch.setattr(values_rules, "CATALOGUE_FILE", copy)
    load.cache_clear()
    view.cache_clear()
    try:
        path = overlay(tmp_path, "v2.0.8", "kestra.tasks.legacyThing")
        first = validate_layers([*LAYERS, path], SCHEMA, "production")
        assert first.findings == []
        assert validate_layers([*LAYERS, path], SCHEMA, "production").findings == []
        assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]  # cached
        text = copy.read_text()
        anchor = "    config:\n      - key: kestra.server.basicAuth\n"
        assert text.count(anchor) == 1
        copy.write_text(text.replace(anchor, "    config:\n      - key: kestra.tasks.legacyThing\n"
                                     "        change: removed\n        what: a test key\n"
                                     "        source: test\n"
                                     "      - key: kestra.server.basicAuth\n"))
        load.cache_clear()
        view.cache_clear()
        again = validate_layers([*LAYERS, path], SCHEMA, "production")
        assert [(f.rule, f.location.line) for f in again.findings] == [("kestra/removed-key", 5)]
    finally:
        load.cache_clear()
        view.cache_clear()
