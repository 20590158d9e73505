"""The jsonschema-free fast path of values validation (kestra_ops.values.schema_fast).

Its contract is one-sided: ``conforms`` says True only where jsonschema's Draft 7 validator finds
no error (then the findings are the same: none); anything else goes to jsonschema, which writes
every finding. Checked here against jsonschema itself, on the shipped schema with the corpus and
with generated mutations of the shipped values, and on generated schemas of the supported
subset.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator

from kestra_ops.values.merge import load_layers
from kestra_ops.values.schema_fast import ASSERTIONS, compile_schema
from kestra_ops.yamlio import YamlLoadError
from tests.helpers_values import CORPUS_DIR, REPO_ROOT, VALUES_DIR

SCHEMA_PATH = REPO_ROOT / "charts" / "kestra" / "values.schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text())
FAST = compile_schema(SCHEMA)
JSONSCHEMA = Draft7Validator(SCHEMA)


def jsonschema_valid(schema, instance) -> bool:
    return not any(True for _ in Draft7Validator(schema).iter_errors(instance))


def merged(*paths):
    return load_layers(list(paths)).plain


def documents():
    """Plain values of every corpus file and every shipped layer, alone and on top of base."""
    out = {}
    for path in sorted(CORPUS_DIR.glob("*.yaml")) + sorted(VALUES_DIR.glob("*.yaml")):
        try:
            out[path.name] = merged(path)
            out[f"base+{path.name}"] = merged(VALUES_DIR / "base.yaml", path)
        except YamlLoadError:
            continue
    return out


DOCUMENTS = documents()


def test_the_shipped_schema_takes_the_fast_path():
    assert FAST is not None, "values.schema.json uses a keyword schema_fast does not know"
    for env in ("dev", "staging", "production"):
        assert FAST.conforms(merged(VALUES_DIR / "base.yaml", VALUES_DIR / f"{env}.yaml")), env


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_agrees_with_jsonschema_on_the_corpus(name):
    doc = DOCUMENTS[name]
    assert FAST.conforms(doc) == (not list(JSONSCHEMA.iter_errors(doc)))


def test_the_corpus_has_both_verdicts():
    verdicts = {FAST.conforms(doc) for doc in DOCUMENTS.values()}
    assert verdicts == {True, False}


def test_conforming_values_are_validated_without_importing_jsonschema(tmp_path):
    """The ~60 ms of importing jsonschema are paid only when there is something to report."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from kestra_ops.values.validate import validate_layers\n"
        f"root = Path({str(REPO_ROOT)!r})\n"
        "report = validate_layers([root / 'values/base.yaml', root / 'values/production.yaml'],"
        " root / 'charts/kestra/values.schema.json', 'production', use_cache=False)\n"
        "assert report.errors == 0, report.to_dict()\n"
        "print('jsonschema' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "KESTRA_OPS_NO_CACHE": "1"},
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


# ------------------------------------------------------------------------------ generated input

JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 2000),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
                         st.sampled_from(["", "x", "Always", "IfNotPresent", "Never", "1.0"]))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, prefix + (index,))


PRODUCTION = merged(VALUES_DIR / "base.yaml", VALUES_DIR / "production.yaml")
PRODUCTION_PATHS = list(_paths(PRODUCTION))


@st.composite
def mutated_values(draw):
    """The production values with a few nodes replaced, deleted, or given an extra key."""
    doc = copy.deepcopy(PRODUCTION)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PRODUCTION_PATHS))
        parent, node = None, doc
        try:
            for part in path:
                parent, node = node, node[part]
        except (KeyError, IndexError, TypeError):
            continue
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "add" and isinstance(node, dict):
            node[draw(st.text(max_size=8))] = draw(JSON_VALUES)
        elif action == "delete" and parent is not None:
            del parent[path[-1]]
        elif parent is not None:
            parent[path[-1]] = draw(JSON_VALUES)
    return doc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_values())
def test_never_passes_what_jsonschema_refuses(doc):
    if FAST.conforms(doc):
        assert not list(JSONSCHEMA.iter_errors(doc))


NUMBERS = st.one_of(st.integers(-2, 5), st.floats(-2, 5, allow_nan=False))
TYPE_NAMES = st.sampled_from(["null", "boolean", "integer", "number", "string", "array",
                              "object"])


def schemas(refs: list[str]):
    leaf = st.one_of(st.booleans(), st.fixed_dictionaries({}, optional={
        "type": st.one_of(TYPE_NAMES, st.lists(TYPE_NAMES, min_size=1, max_size=3)),
        "enum": st.lists(JSON_SCALARS, max_size=3), "const": JSON_SCALARS,
        "minimum": NUMBERS, "maximum": NUMBERS, "exclusiveMinimum": NUMBERS,
        "exclusiveMaximum": NUMBERS, "minLength": st.integers(0, 3),
        "maxLength": st.integers(0, 3), "minItems": st.integers(0, 2),
        "maxItems": st.integers(0, 2), "description": st.text(max_size=3),
        **({"$ref": st.sampled_from(refs)} if refs else {})}))
    return st.recursive(leaf, lambda inner: st.fixed_dictionaries({}, optional={
        "type": TYPE_NAMES, "properties": st.dictionaries(st.sampled_from("abc"), inner,
                                                          max_size=3),
        "additionalProperties": st.one_of(st.booleans(), inner),
        "required": st.lists(st.sampled_from("abcd"), max_size=3), "items": inner,
        "minItems": st.integers(0, 2)}), max_leaves=6)


@st.composite
def schema_and_instance(draw):
    definitions = draw(st.dictionaries(st.sampled_from(["d1", "d2"]), schemas([]), max_size=2))
    root = draw(schemas([f"#/definitions/{name}" for name in definitions]))
    if isinstance(root, dict) and definitions:
        root = {**root, "definitions": definitions}
    instance = draw(st.recursive(JSON_SCALARS, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from("abcd"), inner, max_size=4)),
        max_leaves=8))
    return root, instance


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema_and_instance())
def test_generated_schemas_never_pass_what_jsonschema_refuses(case):
    schema, instance = case
    compiled = compile_schema(schema)
    assert compiled is not None, schema
    if compiled.conforms(instance):
        assert jsonschema_valid(schema, instance), (schema, instance)


@pytest.mark.parametrize("schema", [
    {"pattern": "(unclosed"}, {"pattern": 5}, {"format": "email"},
    {"anyOf": [{"type": "string"}]},
    {"oneOf": []}, {"allOf": []}, {"not": {}}, {"if": {}}, {"patternProperties": {}},
    {"propertyNames": {}}, {"dependencies": {}}, {"uniqueItems": True}, {"multipleOf": 2},
    {"contains": {}}, {"items": [{"type": "string"}]}, {"$id": "x"}, {"x-custom": 1},
    {"$ref": "#/definitions/missing"}, {"$ref": "other.json#/x"}, {"$ref": "#/properties/a"},
    {"$ref": "#/definitions/a~1b", "definitions": {"a/b": {}}},
    {"type": "date"}, {"type": []}, {"required": "a"}, {"minLength": "1"}, {"minimum": True},
    {"properties": {"a": {"pattern": "[x"}}}, {"definitions": {"d": {"format": "uri"}}},
    {"additionalProperties": {"oneOf": []}}, {"items": {"anyOf": []}}, "not a schema",
])
def test_anything_unknown_is_left_to_jsonschema(schema):
    assert not ASSERTIONS & {"format", "anyOf", "oneOf", "patternProperties"}
    assert compile_schema(schema) is None


@pytest.mark.parametrize("value", [
    {"image": {"repository": __import__("decimal").Decimal("1")}}, (1, 2), {1, 2},
    b"bytes", __import__("datetime").date(2024, 1, 1), object(),
])
def test_values_outside_json_are_left_to_jsonschema(value):
    permissive = compile_schema({"type": ["object", "array", "string", "number"],
                                 "properties": {"image": {"properties": {"repository": {
                                     "minimum": 5}}}}})
    assert permissive.conforms(value) is False


def test_a_deep_recursive_schema_is_left_to_jsonschema():
    schema = {"definitions": {"node": {"type": "object",
                                       "additionalProperties": {"$ref": "#/definitions/node"}}},
              "$ref": "#/definitions/node"}
    deep: dict = {}
    node = deep
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]
    assert compile_schema(schema).conforms(deep) is False  # RecursionError: "don't know"
    assert compile_schema(schema).conforms({"a": {"b": {}}}) is True


@pytest.mark.parametrize("pattern, value", [
    ("^$|^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", ""), ("^$|^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", "ok-1"),
    ("^$|^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", "Bad_Name"), ("^$|^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
                                                          "a"),
    ("b", "abc"), ("^b", "abc"), ("\\d+", "x12"), ("^a$", "a\n"), ("é", "café"), (".", ""),
])
def test_pattern_agrees_with_jsonschema(pattern, value):
    schema = {"type": "string", "pattern": pattern}
    compiled = compile_schema(schema)
    assert compiled is not None
    assert compiled.conforms(value) == jsonschema_valid(schema, value)
    bare = {"pattern": pattern}  # pattern says nothing about other types
    assert compile_schema(bare).conforms(5) is jsonschema_valid(bare, 5) is True
