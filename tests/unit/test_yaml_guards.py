"""The YAML loader's guards (issue 12, items 7 and 8): the event pass before composing, and the
round-trip composer's own guards for when that pass stops early on a syntax libyaml refuses."""

from __future__ import annotations

import time

import pytest

from kestra_ops import yamlio
from kestra_ops.workflows.flows.yamldoc import parse_flow
from kestra_ops.yamlio import MAX_DOC_NODES, YamlLoadError, check_shape, load_yaml_text

HOSTILE = {
    "nested-complex-keys": ("? " * 40 + "|\n", "yaml/syntax", "used as a mapping key"),
    "flow-key": ("{[a]: 1}\n", "yaml/syntax", "used as a mapping key"),
    "alias-key": ("a: &x [1]\n*x : 2\n", "yaml/syntax", "used as a mapping key"),
    "deep-block": ("a:\n  " + "- " * 5_000 + "x\n", "yaml/too-deep", "deeper than 200"),
    "deep-flow": ("a: " + "{b: " * 5_000 + "1" + "}" * 5_000 + "\n", "yaml/too-deep",
                  "deeper than 200"),
    "merge-keys": ("a: &a {x: 1}\n" + "".join(f"b{i}: {{<<: *a}}\n" for i in range(30_000)),
                   "yaml/alias-bomb", "merge keys"),
    "many-nodes": ("a:\n" + "- x\n" * (MAX_DOC_NODES + 10), "yaml/too-large", "too many nodes"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
@pytest.mark.parametrize("guard", ["event-pass", "composer"])
def test_hostile_shapes_are_refused_fast(case, guard, monkeypatch):
    text, rule, words = HOSTILE[case]
    if guard == "composer":  # as if libyaml had stopped at a syntax error it alone refuses
        monkeypatch.setattr(yamlio, "check_shape", lambda text, name: None)
    start = time.monotonic()
    with pytest.raises(YamlLoadError) as err:
        load_yaml_text(text, "v.yaml")
    assert (err.value.rule, words in err.value.detail) == (rule, True), err.value
    assert "alias" not in err.value.detail or case == "alias-key"
    assert time.monotonic() - start < 15


def test_the_event_pass_stops_before_reading_everything():
    text = "a:\n" + "- x\n" * 2_000_000  # 8 MB, far past the node limit
    start = time.monotonic()
    with pytest.raises(YamlLoadError) as err:
        check_shape(text, "big.yaml")
    assert time.monotonic() - start < 2
    assert MAX_DOC_NODES - 5 < err.value.location.line <= MAX_DOC_NODES  # where it was passed


def test_plain_keys_anchors_and_aliases_still_load():
    data = load_yaml_text("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\nk: &k name\n*k : 3\n"
                          "list: [&i 1, *i]\n", "v.yaml")
    assert data["other"]["x"] == 1 and data["name"] == 3 and data["list"] == [1, 1]


@pytest.mark.parametrize("text", ["\ud800", "a: \ud800\n", "id: x\udfff\n"])
def test_text_libyaml_cannot_encode_is_an_error_not_a_crash(text):
    with pytest.raises(YamlLoadError):
        load_yaml_text(text, "v.yaml")
    try:
        parse_flow(text, "f.yaml")
    except YamlLoadError:
        pass


def test_a_reused_anchor_prints_nothing(recwarn, capfd):
    """ruamel warns on a reused anchor, quoting both source lines (a secret among them)."""
    data = load_yaml_text("a: &p hunter2-secret\nb: &p 2\nc: *p\n", "v.yaml")
    assert data["c"] == 2
    assert len(recwarn) == 0
    out, err = capfd.readouterr()
    assert "hunter2" not in out + err
