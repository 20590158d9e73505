"""Property tests of the ``--set`` parser (issue 12, item 9): any expression yields a values tree
typed as Helm types it, or :class:`InvalidInput` (exit 2) in one short line that never shows the
value of a secret key; never another exception, never a hang. Through the CLI, ``values render
--set`` ends with exit 0 or 2, never a traceback or an internal error."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kestra_ops.errors import EXIT_USAGE, InvalidInput
from kestra_ops.values.merge import INT64, MAX_SET_PARTS, merge_docs, parse_set

PROPS = settings(max_examples=400, deadline=timedelta(seconds=2), derandomize=True,
                 database=None, suppress_health_check=[HealthCheck.too_slow])
CLI = settings(max_examples=60, deadline=timedelta(seconds=10), derandomize=True, database=None,
               suppress_health_check=[HealthCheck.too_slow,
                                      HealthCheck.function_scoped_fixture])

_KEY_PARTS = st.one_of(st.sampled_from(["a", "kestra", "password", "basic-auth", "", "x\\.y",
                                        "a[0]", "\\", "é", "١", "\udcff"]),
                       st.text(max_size=8))
_VALUES = st.one_of(
    st.sampled_from(["", "0", "-0", "+5", "--5", "+-5", "²", "①②", "١٢٣", "0123", "-012",
                     "1e5", "true", "FALSE", "null", "~", "{", "}", "{}", "{a,b}", "{1,²}",
                     "9" * 5000, str(INT64[1]), str(INT64[1] + 1), str(INT64[0]),
                     str(INT64[0] - 1), "=", "a=b", "\udcff", "\x00", "${VAR}"]),
    st.text(max_size=40),
    st.integers().map(str),
    st.from_regex(r"[+-]{0,3}[0-9]{1,30}", fullmatch=True),
)


@st.composite
def expressions(draw) -> str:
    parts = draw(st.lists(_KEY_PARTS, min_size=1, max_size=6))
    if draw(st.integers(0, 20)) == 0:
        parts = parts * draw(st.integers(50, 1000))  # keys with hundreds or thousands of parts
    key = ".".join(parts)
    if draw(st.integers(0, 10)) == 0:
        return key  # no '='
    return f"{key}={draw(_VALUES)}"


def _leaf(tree):
    while isinstance(tree, dict):
        assert len(tree) == 1
        tree = next(iter(tree.values()))
    return tree


@PROPS
@given(expressions())
def test_any_expression_is_a_typed_tree_or_invalid_input(expr):
    try:
        tree = parse_set(expr)
    except InvalidInput as err:
        assert err.exit_code == EXIT_USAGE
        message = str(err)
        assert message.startswith("--set") and "\n" not in message and len(message) < 400
        key, _, value = expr.partition("=")
        if "password" in key and len(value) >= 4:
            assert value not in message
        return
    assert isinstance(tree, dict) and tree
    leaf = _leaf(tree)
    for item in leaf if isinstance(leaf, list) else [leaf]:
        assert item is None or isinstance(item, (bool, str, int))
        if isinstance(item, int) and not isinstance(item, bool):
            assert INT64[0] <= item <= INT64[1]
    merged = merge_docs([], [expr])  # and it merges (provenance, plain data) without error
    assert isinstance(merged.plain, dict)


@PROPS
@given(st.lists(st.sampled_from(["a"] + ["k"] * 3), min_size=MAX_SET_PARTS + 1,
                max_size=MAX_SET_PARTS + 50))
def test_a_key_past_the_limit_is_refused(parts):
    try:
        parse_set(".".join(parts) + "=1")
    except InvalidInput as err:
        assert f"at most {MAX_SET_PARTS}" in str(err)
    else:
        raise AssertionError("accepted a key past the limit")


@CLI
@given(expressions())
def test_on_the_cli_exit_0_or_2_never_a_traceback(expr):
    from tests.helpers_values import repo_without_cache, run_cli

    with repo_without_cache():
        result = run_cli("values", "render", "--env", "dev", "--set", expr)
    output = (result.stdout or "") + (result.stderr or "")
    assert result.exit_code in (0, 2), output[-600:]
    assert "Traceback" not in output and "internal error" not in output
    if result.exit_code == 2:
        assert result.stdout == ""
