"""JSON-schema findings from the chart's values.schema.json (the same file Helm applies)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

TYPE_CHECKING = False  # (not typing.TYPE_CHECKING: importing typing costs ~2 ms a run)
if TYPE_CHECKING:
    from typing import Any, Iterator

from kestra_ops.errors import InvalidInput
from kestra_ops.redact import MASK, is_secret_key
from kestra_ops.values.rules import Hit

RULE_BY_VALIDATOR = {
    "type": "schema/type", "required": "schema/required", "additionalProperties": "schema/unknown-key",
    "enum": "schema/enum", "const": "schema/enum", "minimum": "schema/range",
    "maximum": "schema/range", "exclusiveMinimum": "schema/range", "exclusiveMaximum": "schema/range",
    "minLength": "schema/format", "maxLength": "schema/format", "pattern": "schema/format",
    "format": "schema/format", "minItems": "schema/range", "maxItems": "schema/range",
}


@lru_cache(maxsize=4)
def _schema(path: str, mtime: float):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InvalidInput(f"{path}: cannot read the chart's values schema: {err}") from None


@lru_cache(maxsize=4)
def _fast(path: str, mtime: float):
    from kestra_ops.values.schema_fast import compile_schema

    return compile_schema(_schema(path, mtime))


@lru_cache(maxsize=4)
def _validator(path: str, mtime: float):
    from jsonschema import Draft7Validator

    return Draft7Validator(_schema(path, mtime))


def _stamp(schema_path: Path) -> tuple[str, float]:
    try:
        return str(schema_path), schema_path.stat().st_mtime
    except OSError:
        raise InvalidInput(f"{schema_path}: values schema not found (is --chart right?)") from None


def load_validator(schema_path: Path):
    return _validator(*_stamp(schema_path))


def schema_hits(values: Any, schema_path: Path) -> Iterator[Hit]:
    """jsonschema's errors as findings. Conforming values are recognised without jsonschema
    (:mod:`kestra_ops.values.schema_fast`, ~60 ms less per cold run); anything else, and every
    message, is jsonschema's."""
    stamp = _stamp(schema_path)
    fast = _fast(*stamp)
    if fast is not None and fast.conforms(values):
        return
    for error in _validator(*stamp).iter_errors(values):
        yield from _hits(error)


def _hits(error) -> Iterator[Hit]:
    path = tuple(error.absolute_path)
    rule = RULE_BY_VALIDATOR.get(error.validator, "schema/other")
    where = ".".join(str(p) for p in path) or "the top level"
    if error.validator == "required" and isinstance(error.instance, dict):
        for key in error.validator_value:
            if key not in error.instance:
                yield Hit(rule, "error", f"{where} is missing required key {key!r}",
                          path + (key,), _describe(error.schema, key))
        return
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        from difflib import get_close_matches

        known = list(error.schema.get("properties", {}))
        for key in error.instance:
            if key in known or _pattern_allows(error.schema, key):
                continue
            close = get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else (
                f"known keys here: {', '.join(known)}" if known else None)
            yield Hit(rule, "error", f"unknown key {key!r} in {where}", path + (key,), hint)
        return
    if error.validator in ("anyOf", "oneOf") and error.context:
        best = min(error.context, key=lambda e: len(e.absolute_path))
        message = f"{where}: {best.message}"
    else:
        message = f"{where}: {error.message}"
    if any(is_secret_key(p) for p in path if isinstance(p, str)):
        message = _mask_instance(message, error.instance)
    yield Hit(rule, "error", message, path, error.schema.get("description"))


def _mask_instance(message: str, instance: Any) -> str:
    """jsonschema quotes the offending value; under a secret key that value is a secret."""
    for shown in sorted({repr(instance), str(instance), json.dumps(instance, default=str)},
                        key=len, reverse=True):
        if shown:
            message = message.replace(shown, MASK)
    return message


def _describe(schema: dict, key: str) -> str | None:
    prop = schema.get("properties", {}).get(key, {})
    return prop.get("description")


def _pattern_allows(schema: dict, key: str) -> bool:
    import re

    return any(re.search(p, str(key)) for p in schema.get("patternProperties", {}))
