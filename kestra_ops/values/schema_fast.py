"""A fast yes-or-"ask jsonschema" answer to: do these values satisfy the chart's schema?

Importing jsonschema (with referencing, attrs, rpds and its bundled metaschemas) and building a
Draft 7 validator cost more than the rest of a cold ``values validate``. Values that conform need
no messages, so they are checked here first, with the standard library only; values that do not
conform (or that this module cannot judge) go to jsonschema, which writes every finding. The
findings are therefore jsonschema's in every case.

The contract is one-sided, and fails closed: :func:`conforms` returns True only when
``jsonschema.Draft7Validator(schema)`` would report no error. It knows a subset of Draft 7
(:data:`ASSERTIONS`); a schema using any other keyword, a ``$ref`` other than
``#/definitions/NAME``, or a malformed keyword value is not compiled (:func:`compile_schema`
returns None: always ask jsonschema). A value of a type outside JSON's (anything but dict, list,
str, int, float, bool, None, exactly) is "don't know". Where the two could differ this module is
stricter (``enum`` and ``const`` compare only same-typed scalars; siblings of ``$ref``, which
Draft 7 ignores, are checked too): a stricter "no" costs only the jsonschema import.
``tests/unit/test_schema_fast.py`` checks the contract against jsonschema itself.
"""

from __future__ import annotations

TYPE_CHECKING = False  # (not typing.TYPE_CHECKING: importing typing costs ~2 ms a run)
if TYPE_CHECKING:
    from typing import Any

ANNOTATIONS = frozenset({"description", "title", "default", "examples", "$comment", "$schema",
                         "definitions", "readOnly", "writeOnly"})
ASSERTIONS = frozenset({"type", "properties", "additionalProperties", "required", "enum", "const",
                        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
                        "maxLength", "items", "minItems", "maxItems", "$ref", "pattern"})
TYPES = frozenset({"null", "boolean", "integer", "number", "string", "array", "object"})
_JSON = (dict, list, str, int, float, bool, type(None))
_NUMBER_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_COUNT_KEYWORDS = ("minLength", "maxLength", "minItems", "maxItems")


class _Unsure(Exception):
    """A value this module does not judge: ask jsonschema."""


class Compiled:
    """A schema this module can judge (see :func:`compile_schema`)."""

    def __init__(self, schema: Any):
        self.schema = schema
        self.definitions = schema.get("definitions", {}) if isinstance(schema, dict) else {}

    def conforms(self, instance: Any) -> bool:
        """True only if jsonschema's Draft 7 validator finds no error in ``instance``."""
        try:
            return self._check(self.schema, instance)
        except (_Unsure, RecursionError):
            return False

    def _check(self, schema: Any, value: Any) -> bool:  # noqa: C901 - one keyword per branch
        if schema is True:
            return True
        if schema is False:
            return False
        if type(value) not in _JSON:
            raise _Unsure
        ref = schema.get("$ref")
        if ref is not None and not self._check(self.definitions[ref[14:]], value):
            return False
        types = schema.get("type")
        if types is not None:
            if not any(_is(t, value) for t in ([types] if isinstance(types, str) else types)):
                return False
        if "enum" in schema and not any(_same(e, value) for e in schema["enum"]):
            return False
        if "const" in schema and not _same(schema["const"], value):
            return False
        if isinstance(value, dict):
            return self._object(schema, value)
        if isinstance(value, list):
            if not _counts(schema, "minItems", "maxItems", len(value)):
                return False
            items = schema.get("items")
            return items is None or all(self._check(items, v) for v in value)
        if isinstance(value, str):
            return _counts(schema, "minLength", "maxLength", len(value)) and (
                "pattern" not in schema or _search(schema["pattern"], value))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return _bounds(schema, value)
        return True

    def _object(self, schema: dict, value: dict) -> bool:
        for key in schema.get("required", ()):
            if key not in value:
                return False
        properties = schema.get("properties", {})
        for key, sub in properties.items():
            if key in value and not self._check(sub, value[key]):
                return False
        extra = schema.get("additionalProperties", True)
        if extra is True:
            return True
        extras = [key for key in value if key not in properties]
        if extra is False:
            return not extras
        return all(self._check(extra, value[key]) for key in extras)


def _is(name: str, value: Any) -> bool:
    """jsonschema's draft 7 type checker, for exact JSON types."""
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if isinstance(value, bool):
        return False
    if name == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    return isinstance(value, (int, float))  # "number"


def _same(expected: Any, value: Any) -> bool:
    """Same-typed scalars that are equal (jsonschema's ``equal`` then agrees); anything else is
    "not the same" here (the stricter answer)."""
    return (type(expected) is type(value) and type(value) in (str, int, float, bool, type(None))
            and expected == value)


def _counts(schema: dict, low: str, high: str, n: int) -> bool:
    return not (low in schema and n < schema[low]) and not (high in schema and n > schema[high])


def _search(pattern: str, value: str) -> bool:
    """Draft 7 ``pattern`` as jsonschema applies it: ``re.search`` (unanchored)."""
    import re

    return re.search(pattern, value) is not None


def _bounds(schema: dict, value: int | float) -> bool:
    if "minimum" in schema and value < schema["minimum"]:
        return False
    if "maximum" in schema and value > schema["maximum"]:
        return False
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        return False
    return not ("exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"])


def compile_schema(schema: Any) -> Compiled | None:
    """``schema`` ready for :meth:`Compiled.conforms`, or None when it uses anything this module
    does not know exactly (then jsonschema alone judges)."""
    definitions = schema.get("definitions", {}) if isinstance(schema, dict) else {}
    if not isinstance(definitions, dict):
        return None
    seen: set[int] = set()
    todo = [schema, *definitions.values()]
    while todo:
        node = todo.pop()
        if node is True or node is False:
            continue
        if not isinstance(node, dict):
            return None
        if id(node) in seen:
            continue
        seen.add(id(node))
        for key, arg in node.items():
            if key in ANNOTATIONS:
                continue
            if key not in ASSERTIONS or not _well_formed(key, arg, definitions):
                return None
            if key == "properties":
                todo.extend(arg.values())
            elif key in ("additionalProperties", "items"):
                todo.append(arg)
    return Compiled(schema)


def _well_formed(key: str, arg: Any, definitions: dict) -> bool:  # noqa: C901 - one per keyword
    if key == "type":
        names = [arg] if isinstance(arg, str) else arg
        return isinstance(names, list) and bool(names) and all(
            isinstance(n, str) and n in TYPES for n in names)
    if key == "properties":
        return isinstance(arg, dict) and all(isinstance(k, str) for k in arg)
    if key in ("additionalProperties", "items"):
        return isinstance(arg, (bool, dict))
    if key == "required":
        return isinstance(arg, list) and all(isinstance(k, str) for k in arg)
    if key == "enum":
        return isinstance(arg, list)
    if key == "const":
        return True
    if key == "pattern":  # one that Python's re (jsonschema's engine) compiles, else unknown
        import re

        try:
            re.compile(arg)
        except (re.error, TypeError):
            return False
        return isinstance(arg, str)
    if key in _NUMBER_KEYWORDS or key in _COUNT_KEYWORDS:
        return type(arg) in (int, float)
    # $ref: only "#/definitions/NAME" with a plain NAME that exists (no JSON-pointer escapes)
    if not isinstance(arg, str) or not arg.startswith("#/definitions/"):
        return False
    name = arg[14:]
    return bool(name) and not any(c in name for c in "/~%") and name in definitions
