"""Layered values: Helm merge semantics, --set typing, provenance, and a render that keeps the
base's comments and key order."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml as pyyaml

from kestra_ops.errors import InvalidInput
from kestra_ops.values.merge import load_layers, merge_docs, parse_set
from kestra_ops.yamlio import YamlDoc, YamlLoadError, load_yaml_text
from tests.helpers_values import VALUES_DIR, all_output, in_repo, run_cli  # noqa: F401


def doc(text: str, name: str) -> YamlDoc:
    return YamlDoc(Path(name), load_yaml_text(text, name), name)


def merge(*texts: str, sets=()) -> dict:
    docs = [doc(t, f"layer{i}.yaml") for i, t in enumerate(texts)]
    return merge_docs(docs, sets).plain


# --------------------------------------------------------------------------- Helm merge rules

def test_maps_merge_key_by_key():
    out = merge("a:\n  b: 1\n  c: 2\nd: 3\n", "a:\n  c: 20\n  e: 5\n")
    assert out == {"a": {"b": 1, "c": 20, "e": 5}, "d": 3}


def test_nested_maps_merge_at_every_depth():
    out = merge("a: {b: {c: {d: 1, e: 2}}}\n", "a: {b: {c: {e: 3}, f: 4}}\n")
    assert out == {"a": {"b": {"c": {"d": 1, "e": 3}, "f": 4}}}


def test_lists_replace_and_are_never_concatenated():
    out = merge("l: [a, b, c]\nm: {x: [1, 2]}\n", "l: [z]\nm: {x: []}\n")
    assert out == {"l": ["z"], "m": {"x": []}}


def test_null_deletes_a_key():
    out = merge("a:\n  b: 1\n  c: 2\nd: {e: 1}\n", "a:\n  b: null\nd: ~\n")
    assert out == {"a": {"c": 2}}


def test_null_for_a_missing_key_changes_nothing():
    assert merge("a: 1\n", "b: null\n") == {"a": 1}


def test_scalar_replaces_map_and_map_replaces_scalar():
    out = merge("a: {b: 1}\nc: 1\n", "a: text\nc: {d: 2}\n")
    assert out == {"a": "text", "c": {"d": 2}}


def test_later_layers_win_in_order():
    assert merge("a: 1\n", "a: 2\n", "a: 3\n") == {"a": 3}


def test_empty_overlay_changes_nothing():
    docs = [doc("a: 1\n", "base.yaml"), YamlDoc(Path("empty.yaml"), None, "empty.yaml")]
    assert merge_docs(docs).plain == {"a": 1}


def test_layers_are_not_mutated():
    base = doc("a: {b: [1, 2]}\n", "base.yaml")
    before = copy.deepcopy(base.data)
    merge_docs([base, doc("a: {b: [3]}\n", "over.yaml")])
    assert base.data == before


def test_non_mapping_layer_is_refused_at_its_line():
    with pytest.raises(YamlLoadError) as err:
        merge_docs([doc("a: 1\n", "base.yaml"),
                    YamlDoc(Path("over.yaml"), load_yaml_text("# c\n- a\n", "over.yaml"),
                            "over.yaml", 2)])
    assert err.value.rule == "yaml/not-a-mapping"
    assert (err.value.location.file, err.value.location.line) == ("over.yaml", 2)


def test_merged_values_equal_an_independent_helm_merge(in_repo):
    """values/base.yaml + values/ENV.yaml, merged by kestra-ops, equal a plain re-implementation
    of Helm's coalescing on PyYAML-loaded data."""

    def helm(dst, src):
        out = dict(dst)
        for k, v in src.items():
            if v is None:
                out.pop(k, None)
            elif isinstance(v, dict) and isinstance(out.get(k), dict):
                out[k] = helm(out[k], v)
            else:
                out[k] = v
        return out

    base = pyyaml.safe_load((VALUES_DIR / "base.yaml").read_text())
    for env in ("dev", "staging", "production"):
        overlay = pyyaml.safe_load((VALUES_DIR / f"{env}.yaml").read_text())
        merged = load_layers([VALUES_DIR / "base.yaml", VALUES_DIR / f"{env}.yaml"]).plain
        assert merged == helm(base, overlay), env


# --------------------------------------------------------------------------- --set typing

@pytest.mark.parametrize("expr, expected", [
    ("a=1", {"a": 1}),
    ("a=-42", {"a": -42}),
    ("a=0", {"a": 0}),
    ("a=true", {"a": True}),
    ("a=False", {"a": False}),
    ("a=null", {"a": None}),
    ("a=~", {"a": None}),
    ("a=1.5", {"a": "1.5"}),
    ("a=0123", {"a": "0123"}),
    ("a=v1.3.2", {"a": "v1.3.2"}),
    ("a=", {"a": ""}),
    ("a=x=y", {"a": "x=y"}),
    ("a={x,y}", {"a": ["x", "y"]}),
    ("a={1, true ,z}", {"a": [1, True, "z"]}),
    ("a={}", {"a": []}),
    ("a.b.c=d", {"a": {"b": {"c": "d"}}}),
    (r"podAnnotations.sidecar\.istio\.io/inject=false",
     {"podAnnotations": {"sidecar.istio.io/inject": False}}),
    (r"a\.b=1", {"a.b": 1}),
])
def test_set_values_are_typed_like_helm(expr, expected):
    assert parse_set(expr) == expected


def test_set_int_and_bool_types_are_real():
    assert type(parse_set("a=8")["a"]) is int
    assert type(parse_set("a=true")["a"]) is bool
    assert type(parse_set("a=0123")["a"]) is str


@pytest.mark.parametrize("expr", ["novalue", "=1", "a..b=1", ".a=1", "a.=1", "a[0]=1",
                                  "a.b[1].c=2"])
def test_set_rejects_bad_keys(expr):
    with pytest.raises(InvalidInput) as err:
        parse_set(expr)
    assert expr.split("=")[0] in str(err.value) or "KEY=VALUE" in str(err.value)


def test_set_merges_on_top_of_layers_and_null_deletes():
    docs = [doc("a: {b: 1, c: 2}\nl: [1, 2]\n", "base.yaml")]
    merged = merge_docs(docs, ["a.b=10", "a.c=null", "l={3}", "new.key=x"])
    assert merged.plain == {"a": {"b": 10}, "l": [3], "new": {"key": "x"}}
    assert merged.layers == ["base.yaml", "--set", "--set", "--set", "--set"]
    assert merged.locate(("a", "b")).file == "--set[1]"
    assert merged.locate(("l",)).file == "--set[3]"
    assert merged.locate(("new", "key")).file == "--set[4]"


def test_set_without_layers_builds_values():
    assert merge_docs([], ["a.b=1"]).plain == {"a": {"b": 1}}


def test_bad_set_on_the_cli_is_a_one_line_usage_error(in_repo):
    result = run_cli("values", "render", "--env", "dev", "--set", "a[0]=1")
    assert result.exit_code == 2
    assert "Traceback" not in all_output(result)
    assert result.stderr.startswith("error: --set 'a[0]=1'")


# --------------------------------------------------------------------------- provenance

def _line_of(path: Path, text: str, after: str | None = None) -> int:
    lines = path.read_text().splitlines()
    start = 0
    if after is not None:
        start = next(i for i, line in enumerate(lines) if line.startswith(after))
    return next(i for i in range(start, len(lines)) if lines[i].startswith(text)) + 1


def test_provenance_points_at_the_layer_that_set_each_value(in_repo):
    base, prod = VALUES_DIR / "base.yaml", VALUES_DIR / "production.yaml"
    merged = load_layers([base, prod])
    # set by the overlay: located in the overlay
    loc = merged.locate(("standalone", "workerThreads"))
    assert (loc.file, loc.line) == ("values/production.yaml",
                                    _line_of(prod, "  workerThreads:"))
    assert loc.col == 3
    loc = merged.locate(("kestra", "storage", "minio", "bucket"))
    assert (loc.file, loc.line) == ("values/production.yaml",
                                    _line_of(prod, "      bucket:"))
    # only in base: located in base, even next to a sibling the overlay changed
    loc = merged.locate(("kestra", "storage", "minio", "endpoint"))
    assert (loc.file, loc.line) == ("values/base.yaml", _line_of(base, "      endpoint:"))
    loc = merged.locate(("image", "repository"))
    assert (loc.file, loc.line) == ("values/base.yaml", _line_of(base, "  repository: kestra/"))
    # a list item from base
    loc = merged.locate(("kestra", "plugins", "blacklist", 0))
    assert (loc.file, loc.line) == ("values/base.yaml", _line_of(base, '      - "io.kestra'))


def test_provenance_of_a_replaced_list_is_the_overlay(tmp_path):
    base = tmp_path / "base.yaml"
    over = tmp_path / "over.yaml"
    base.write_text("l:\n  - a\n  - b\n  - c\nm:\n  k: 1\n")
    over.write_text("# overlay\nl:\n  - z\n")
    merged = load_layers([base, over])
    assert merged.plain["l"] == ["z"]
    assert merged.locate(("l",)).file.endswith("over.yaml")
    assert merged.locate(("l", 0)).line == 3
    # items that only the base list had are gone, so their paths fall back to the list
    assert merged.locate(("l", 2)).file.endswith("over.yaml")
    assert merged.locate(("m", "k")).file.endswith("base.yaml")


def test_provenance_of_a_deleted_key_falls_back_to_its_parent(tmp_path):
    base = tmp_path / "base.yaml"
    over = tmp_path / "over.yaml"
    base.write_text("a:\n  b:\n    c: 1\n  d: 2\n")
    over.write_text("a:\n  b: null\n")
    merged = load_layers([base, over])
    assert merged.plain == {"a": {"d": 2}}
    loc = merged.locate(("a", "b", "c"))
    assert loc.file.endswith("base.yaml") and loc.line == 1  # the parent `a:` in base


# --------------------------------------------------------------------------- render keeps the base

def test_render_keeps_base_comments_and_key_order(in_repo):
    result = run_cli("values", "render", "--env", "dev")
    assert result.exit_code == 0, all_output(result)
    text = result.stdout
    base_text = (VALUES_DIR / "base.yaml").read_text()
    for comment in ("# pin the exact version; an empty tag falls back to the chart's appVersion",
                    "# --- Bundled PostgreSQL (StatefulSet kestra-postgres, pod kestra-postgres-0)",
                    "# purge of processed queue rows"):
        assert comment in base_text
        assert comment in text
    rendered = pyyaml.safe_load(text)
    base = pyyaml.safe_load(base_text)
    assert list(rendered) == list(base)
    assert list(rendered["kestra"]) == list(base["kestra"])
    # and the dev overlay's values are in
    assert rendered["standalone"]["workerThreads"] == 8
    assert rendered["postgres"]["persistence"]["size"] == "10Gi"
