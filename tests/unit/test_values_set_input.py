"""`--set` input that used to end as `internal error` (exit 1): each is now a typed value as Helm
types it, or one clear line and exit 2 (issue 12, item 9)."""

from __future__ import annotations

import pytest

from kestra_ops.errors import InvalidInput
from kestra_ops.values.merge import MAX_SET_PARTS, parse_set
from tests.helpers_values import all_output, assert_no_traceback, in_repo, run_cli  # noqa: F401

BIG = "9" * 5000


@pytest.mark.parametrize("expr, expected", [
    ("k=١٢٣", "١٢٣"),  # Arabic-Indic digits: Helm keeps them as a string
    ("k=०१२", "०१२"),  # Devanagari digits too
    ("k=+5", 5),  # Go's ParseInt takes a sign
    ("k=-0", 0),
    ("k=-012", -12),  # Helm only keeps a leading 0 as text, not a leading -0
    ("k=9223372036854775807", 2 ** 63 - 1),
    ("k=-9223372036854775808", -2 ** 63),
    ("k=-", "-"),
    ("k=--", "--"),
    ("k=1e5", "1e5"),
    ("k=0x10", "0x10"),
    ("k=1_000", "1_000"),
    ("k=x²", "x²"),
])
def test_values_are_typed_as_helm_types_them(expr, expected):
    value = parse_set(expr)["k"]
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("expr, says", [
    (f"k={BIG}", "64-bit"),
    ("k=9223372036854775808", "64-bit"),
    ("k=-9223372036854775809", "64-bit"),
    ("k=²", "not digits"),
    ("k=①②", "not digits"),
    ("k=--5", "sign"),
    ("k=+-5", "sign"),
    (f"k={{1,{BIG}}}", "64-bit"),
    ("k=\udcff", "UTF-8"),
    ("k\udcff=1", "UTF-8"),
])
def test_bad_values_are_invalid_input(expr, says):
    with pytest.raises(InvalidInput, match=says) as err:
        parse_set(expr)
    assert len(str(err.value)) < 300 and "\n" not in str(err.value)


def test_a_key_with_thousands_of_parts_is_refused_in_one_line():
    key = ".".join(["a"] * 3000)
    with pytest.raises(InvalidInput, match=f"3000 parts.*at most {MAX_SET_PARTS}") as err:
        parse_set(f"{key}=1")
    assert len(str(err.value)) < 300


def test_a_key_at_the_limit_renders(in_repo):
    key = ".".join(["a"] * MAX_SET_PARTS)
    result = run_cli("values", "render", "--env", "dev", "--set", f"{key}=1")
    assert result.exit_code == 0, all_output(result)[-500:]


def test_the_value_of_a_secret_key_is_never_echoed():
    for value in ("7" * 30, "--75", "²7"):
        with pytest.raises(InvalidInput) as err:
            parse_set(f"kestra.server.basic-auth.password={value}")
        assert "7" not in str(err.value), err.value
        assert "kestra.server.basic-auth.password=..." in str(err.value)


@pytest.mark.parametrize("expr", [f"k={BIG}", "k=²", "k=--5", ".".join(["a"] * 3000) + "=1",
                                  "k=\udcff"])
def test_on_the_cli_each_is_one_line_and_exit_2(expr, in_repo):
    result = run_cli("values", "render", "--env", "dev", "--set", expr)
    assert_no_traceback(result)
    assert result.exit_code == 2, all_output(result)[-500:]
    assert result.stdout == ""
    assert result.stderr.startswith("error: --set") and result.stderr.count("\n") == 1
    assert "internal error" not in result.stderr
