"""Flow syntax an upgrade removes, renames or changes (kestra_ops.upgrades.flow_rules).

One realistic flow per ``flows`` entry of the version catalogue (USES: the test fails when an
entry has no example, so a new catalogue entry needs one) and the same flow rewritten with the
entry's replacement (CLEAN). In each example ``»`` marks where the finding must point (it is
removed before the flow is parsed)."""

from __future__ import annotations

import pytest

from kestra_ops.upgrades.catalogue import load, parse_catalogue
from kestra_ops.upgrades.flow_rules import changes_for, check_flow, check_flows
from kestra_ops.upgrades.version import parse
from kestra_ops.workflows.flows.yamldoc import parse_flow

from tests.upgrade_flow_examples import CLEAN, HEAD, MARK, SEVERITY, STILL_FLAGGED, USES, task


def marked(text: str, name: str = "flows/example.yaml"):
    """(flow, (line, col) of the mark) of a marked example."""
    before = text[:text.index(MARK)]
    line = before.count("\n") + 1
    col = len(before) - (before.rfind("\n") + 1) + 1
    return parse_flow(text.replace(MARK, "", 1), name), (line, col)


def entries():
    return [(release, change) for release in load().releases for change in release.flows]


def ids():
    return [change.id for _, change in entries()]


@pytest.mark.parametrize("release, change", entries(), ids=ids())
def test_feature_is_found_where_it_stands(release, change):
    if change.id not in USES:
        pytest.fail(f"catalogue flow entry {change.id} has no example in USES")
    flow, (line, col) = marked(USES[change.id])
    found = [f for f in check_flow(flow, [(release, change)]) if f.rule == f"upgrade/{change.id}"]
    assert len(found) == 1, found
    assert found[0].severity == SEVERITY[change.change]
    assert (found[0].location.file, found[0].location.line, found[0].location.col) == (
        "flows/example.yaml", line, col)
    assert f"(Kestra {release.name})" in found[0].message
    assert change.what in found[0].message
    assert change.replacement in found[0].hint and change.source in found[0].hint
    how = found[0].hint.split(" (unsure: ")[0]
    assert ("kestra-migrate rewrites it" in how) is (change.automatic is True)
    assert ("rewrite by hand" in how) is (change.automatic is False)
    if change.unsure:
        assert f"(unsure: {change.unsure})" in found[0].hint


@pytest.mark.parametrize("release, change", entries(), ids=ids())
def test_replacement_is_clean(release, change):
    if change.id in STILL_FLAGGED:
        pytest.xfail(STILL_FLAGGED[change.id][1])
    if change.id not in CLEAN:
        pytest.fail(f"catalogue flow entry {change.id} has no replacement example in CLEAN")
    flow = parse_flow(CLEAN[change.id], "clean.yaml")
    assert isinstance(flow.data, dict) and flow.data.get("tasks"), "the example is a flow"
    assert [f for f in check_flow(flow, [(release, change)])] == []


@pytest.mark.parametrize("change_id", sorted(STILL_FLAGGED))
def test_replacement_still_flagged(change_id):
    """The documented blind spots (see STILL_FLAGGED) are still there: when one goes away,
    this fails and the example moves to CLEAN."""
    release, change = next((r, c) for r, c in entries() if c.id == change_id)
    flow = parse_flow(STILL_FLAGGED[change_id][0], "clean.yaml")
    assert [f.rule for f in check_flow(flow, [(release, change)])] == [f"upgrade/{change_id}"]


def test_every_example_names_a_catalogue_entry():
    known = set(ids())
    assert set(USES) <= known and set(CLEAN) <= known and set(STILL_FLAGGED) <= known
    assert not set(CLEAN) & set(STILL_FLAGGED)


# ---- detectors: edge cases ---------------------------------------------------------------------

def catalogue(*flows: dict, version: str = "2.0.0"):
    """A one-release catalogue with ``flows`` entries (the file's own format)."""
    entries = [{"id": f"rule-{i}", "change": "removed", "what": "w", "replacement": "r",
                "source": "s", **f} for i, f in enumerate(flows)]
    return parse_catalogue({"format": 1, "targets": ["2.0"], "releases": [
        {"version": "1.3.0", "reversible": False, "reversibility": "x", "sources": ["s"]},
        {"version": version, "reversible": False, "reversibility": "x", "sources": ["s"],
         "flows": entries}]})


def hits(text: str, *detect: dict) -> list[tuple[str, int, int]]:
    cat = catalogue(*({"detect": d} for d in detect))
    flow = parse_flow(text, "f.yaml")
    return [(f.rule, f.location.line, f.location.col)
            for f in check_flows([flow], cat, parse("2.0.0"))]


def test_type_glob_without_star_is_exact():
    text = task("""id: each
type: io.kestra.plugin.core.flow.ForEachItem
items: x""")
    assert hits(text, {"type": "io.kestra.plugin.core.flow.ForEach"}) == []
    assert hits(text, {"type": "io.kestra.plugin.core.flow.ForEach*"}) == [
        ("upgrade/rule-0", 5, 11)]


def test_type_anywhere_property_and_without():
    text = HEAD + """tasks:
  - id: outer
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - id: script
        type: io.kestra.plugin.scripts.python.Script
        runner: DOCKER
        script: print(1)
      - id: parallel
        type: io.kestra.plugin.core.flow.Parallel
        onChildFailure: CONTINUE
        tasks: []
"""
    assert hits(text, {"type": "io.kestra.plugin.scripts.*", "property": "runner"}) == [
        ("upgrade/rule-0", 9, 9)]  # the key
    assert hits(text, {"type": "io.kestra.plugin.scripts.*", "property": "docker"}) == []
    assert hits(text, {"type": "io.kestra.plugin.scripts.*", "without": "docker"}) == [
        ("upgrade/rule-0", 8, 15)]  # its type
    assert hits(text, {"type": "io.kestra.plugin.core.flow.Parallel",
                       "without": "onChildFailure"}) == []


def test_double_star_reaches_any_depth():
    text = HEAD + """runIf: "{{ true }}"
tasks:
  - id: parallel
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: branch
        type: io.kestra.plugin.core.flow.Sequential
        tasks:
          - id: deep
            type: io.kestra.plugin.core.log.Log
            runIf: "{{ inputs.go }}"
            message: deep
"""
    # zero levels (the root's runIf) and five levels down, each once
    assert hits(text, {"path": "**.runIf"}) == [("upgrade/rule-0", 3, 1),
                                               ("upgrade/rule-0", 13, 13)]
    assert hits(text, {"path": "**.**.runIf"}) == [("upgrade/rule-0", 3, 1),
                                                   ("upgrade/rule-0", 13, 13)]
    assert hits(text, {"path": "tasks.*.tasks.*.tasks.*.runIf"}) == [("upgrade/rule-0", 13, 13)]
    assert hits(text, {"path": "tasks.*.runIf"}) == []


def test_pebble_in_nested_string_and_block_scalar():
    text = HEAD + """tasks:
  - id: request
    type: io.kestra.plugin.core.http.Request
    uri: https://example.com
    headers:
      X-Payload: "{{ json(inputs.payload) }}"
  - id: script
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - |
        echo start
          echo "{{ outputs.request.body | json }}"
"""
    assert hits(text, {"pebble": r"(?<![\w.|])json\s*\("}) == [("upgrade/rule-0", 8, 18)]
    assert hits(text, {"pebble": r"\|\s*json\b(?!\s*\()"}) == [("upgrade/rule-0", 14, 41)]
    # a folded or quoted multi-line string: the finding points at the string's start
    folded = HEAD + 'tasks:\n  - id: l\n    type: io.kestra.plugin.core.log.Log\n' \
        '    message: >\n      first\n      {{ x | json }}\n'
    assert hits(folded, {"pebble": r"\|\s*json\b"}) == [("upgrade/rule-0", 6, 14)]


def test_pebble_one_finding_per_string():
    text = task('id: l\ntype: io.kestra.plugin.core.log.Log\n'
                'message: "{{ a | json }} and {{ b | json }}"')
    assert hits(text, {"pebble": r"\|\s*json\b"}) == [("upgrade/rule-0", 6, 14)]


def test_path_value_and_with_modifiers():
    text = HEAD + """inputs:
  - id: a
    type: BOOLEAN
    defaults: true
    required: false
  - id: b
    type: STRING
    defaults: x
    required: true
  - id: c
    type: ENUM
    defaults: 0
    required: 0
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: hi
"""
    assert hits(text, {"path": "inputs.*.type", "value": "BOOLEAN"}) == [("upgrade/rule-0", 5, 11)]
    assert hits(text, {"path": "inputs.*.type", "value": ["ENUM", "BOOLEAN"]}) == [
        ("upgrade/rule-0", 5, 11), ("upgrade/rule-0", 13, 11)]
    # `required: false` is the boolean: neither `true` nor the number 0 matches
    assert hits(text, {"path": "inputs.*.defaults", "with": {"required": False}}) == [
        ("upgrade/rule-0", 6, 5)]


def test_removed_wins_over_changed_on_the_same_node():
    text = task("""id: each
type: io.kestra.plugin.core.flow.ForEachItem
items: x""")
    flow = parse_flow(text, "f.yaml")
    cat = load()
    rules = [f.rule for f in check_flows([flow], cat, parse("2.0.8"))]
    assert rules == ["upgrade/foreachitem-removed"]
    assert [f.rule for f in check_flows([flow], cat, parse("1.3.22"))] == [
        "upgrade/foreachitem-from-zero"]
    # from 1.3.22 on, only the 2.0 removal is news
    assert [f.rule for f in check_flows([flow], cat, parse("2.0.8"), parse("1.3.22"))] == [
        "upgrade/foreachitem-removed"]


def test_changes_for_range():
    cat = load()
    every = {c.id for _, c in changes_for(cat, parse("2.0.8"))}
    assert {"foreachitem-from-zero", "foreach-removed", "dag-fail-fast"} <= every
    only_2 = {c.id for _, c in changes_for(cat, parse("2.0.8"), parse("2.0.0"))}
    assert only_2 == {"dag-fail-fast"}
    before = {c.id for _, c in changes_for(cat, parse("1.3.22"))}
    assert "foreach-removed" not in before and "file-listing-limit" in before
    assert changes_for(cat, parse("2.0.0"), parse("2.0.0")) == []


@pytest.mark.parametrize("text", ["", "null\n", "- a\n- type: io.kestra.plugin.core.flow.ForEach\n",
                                  "just a string\n", "42\n"])
def test_not_a_flow_does_not_crash(text):
    flow = parse_flow(text, "odd.yaml")
    found = check_flows([flow], load(), parse("2.0.8"))
    if "ForEach" in text:  # a list holding a removed type is still named, with its line
        assert [(f.rule, f.location.line) for f in found] == [("upgrade/foreach-removed", 2)]
    else:
        assert found == []
