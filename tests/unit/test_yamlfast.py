"""yamlfast.py reads plain values documents with libyaml for validation: what it reads
must be exactly what the round-trip loader reads (data, and the line and column of every key
and item); anything not plain it leaves to the round-trip loader (None), which reports."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kestra_ops.yamlfast import load_plain
from kestra_ops.yamlio import YamlLoadError, load_yaml_file, to_plain
from tests.helpers_values import CORPUS_DIR, REPO_ROOT, VALUES_DIR

FILES = sorted(VALUES_DIR.glob("*.yaml")) + sorted(CORPUS_DIR.glob("*.yaml")) + sorted(
    (REPO_ROOT / "tests" / "fixtures").rglob("*.yaml"))


def positions(node, path=()) -> dict:
    """Every key's and item's (line, col), by path."""
    out = {}
    if isinstance(node, dict):
        for key, value in node.items():
            out[path + (str(key),)] = tuple(node.lc.key(key))
            out.update(positions(value, path + (str(key),)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out[path + (i,)] = tuple(node.lc.item(i))
            out.update(positions(value, path + (i,)))
    return out


def same_as_round_trip(path: Path) -> bool:
    """True when fastload read ``path`` (and then it equals the round-trip load)."""
    fast = load_plain(path)
    try:
        slow = load_yaml_file(path)
    except YamlLoadError as err:
        assert fast is None, f"fastload read what the loader refuses: {err}"
        return False
    if fast is None:
        return False
    assert to_plain(fast.data) == to_plain(slow.data)
    assert positions(fast.data) == positions(slow.data)
    assert (fast.name, fast.line) == (slow.name, slow.line)
    return True


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_repository_file_reads_the_same(path):
    same_as_round_trip(path)


def test_the_shipped_values_take_the_fast_path():
    for path in VALUES_DIR.glob("*.yaml"):
        assert same_as_round_trip(path), path


def test_a_long_blacklist_with_comments_reads_the_same_and_fast(tmp_path):
    import time

    lines = "".join(f'    - "io.kestra.plugin.scripts.python.Script{i:05d}"  # ticket {i}\n'
                    for i in range(10_000))
    path = tmp_path / "big.yaml"
    path.write_text(f"# head\nkestra:\n  plugins:\n    blacklist:\n{lines}  url: x\n")
    started = time.monotonic()
    assert load_plain(path) is not None
    assert time.monotonic() - started < 1.0
    assert same_as_round_trip(path)


@pytest.mark.parametrize("text", [
    "a: &x 1\nb: *x\n",  # anchors and aliases
    "base: &b {x: 1}\nover:\n  <<: *b\n  y: 2\n",  # a merge key
    "a: !!str 1\n",  # an explicit tag
    "a: !custom x\n",
    "a: 1\na: 2\n",  # a duplicate key
    "a: 1\n---\nb: 2\n",  # two documents
    "%YAML 1.1\n---\na: yes\n",  # a directive
    "a:\n\tb: 1\n",  # a tab
    "- a\n- b\n",  # not a mapping
    "just text\n",
    "",
    "# only a comment\n",
    "? [a, b]\n: c\n",  # a complex key
    "1: a\n",  # a key that is not text
    "a: [1, 2\n",  # a syntax error
    "a: " + "[" * 300 + "]" * 300 + "\n",  # deeper than the limit
    "a: 2024-02-30\n",  # a value the constructor refuses
    "a: " + "9" * 5000 + "\n",
])
def test_anything_not_plain_is_left_to_the_round_trip_loader(text, tmp_path):
    path = tmp_path / "v.yaml"
    path.write_text(text)
    assert load_plain(path) is None


@pytest.mark.parametrize("text", [
    "a: yes\nb: no\nc: on\nd: 0o17\ne: 017\nf: 1_000\ng: .inf\nh: ~\ni: 0x1F\nj: 1e3\n",
    "t: 2024-01-02\nu: 2024-01-02T03:04:05Z\nv: '123'\nw: \"x\\ty\"\nx: |\n  a\n  b\ny: >\n  c\n",
    "n: null\nm: {}\nl: []\nk: [1, {a: b}, [c]]\nq: \"\"\nr: 1.5\ns: -0\n",
    "\ufeffa: 1\n",  # a byte-order mark
    "a: b  # comment\n# c\nd:\n  - e  # f\n",
])
def test_yaml_12_typing_is_the_round_trip_loaders(text, tmp_path):
    path = tmp_path / "v.yaml"
    path.write_text(text, encoding="utf-8")
    assert same_as_round_trip(path)


_TOKENS = st.one_of(st.sampled_from(list("[]{}:,-?&*!|>'\"#%@` \n.=~^$\\") + [
    "a", "k", "true", "no", "null", "~", "1e9", "0x1F", "0o7", ".inf", "2024-01-02", "<<",
    "- ", ": ", "\n  ", "\n    ", "'x'", '"y"', "١٢٣", "é", "9" * 30]),
    st.text(min_size=1, max_size=4))


@settings(max_examples=400, deadline=timedelta(seconds=3), derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(_TOKENS, max_size=40).map("".join))
def test_whatever_fastload_reads_the_round_trip_loader_reads_the_same(tmp_path, text):
    path = tmp_path / "v.yaml"
    try:
        path.write_text("k: 1\n" + text, encoding="utf-8")
    except UnicodeEncodeError:
        return
    same_as_round_trip(path)


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                     st.text(max_size=12), st.sampled_from(["yes", "no", "on", "0o17", "017",
                                                            "1_000", "2024-01-02", "~", "null"]))


@settings(max_examples=300, deadline=timedelta(seconds=3), derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.text(min_size=1, max_size=8),
                       st.recursive(_SCALARS, lambda inner: st.one_of(
                           st.lists(inner, max_size=4),
                           st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=4)),
                           max_leaves=20), min_size=1, max_size=6),
       st.booleans(), st.sampled_from([None, '"', "'"]))
def test_documents_of_any_shape_and_style_read_the_same(tmp_path, data, flow, style):
    import yaml

    text = yaml.safe_dump(data, default_flow_style=flow, default_style=style,
                          allow_unicode=True)
    path = tmp_path / "v.yaml"
    path.write_text(text, encoding="utf-8")
    same_as_round_trip(path)


def _ruamel_typed(value: str):
    """A plain scalar as ruamel's round-trip loader types it (its resolver and constructor)."""
    from kestra_ops import yamlfast

    resolver, constructor, node_class = yamlfast._typing()
    tag = resolver.resolve(node_class, value, (True, False))
    if tag == "tag:yaml.org,2002:str":
        return value
    try:
        return to_plain(constructor.construct_object(node_class(tag, value, style=None),
                                                     deep=True))
    except Exception as err:  # noqa: BLE001 - the same refusal on both sides
        return ("refused", type(err).__name__)


def test_plain_scalars_typed_without_ruamel_are_typed_as_ruamel_types_them():
    """Every string of up to 3 characters from the characters that steer YAML 1.2 typing, and
    the edge cases: the shortcut and ruamel agree on value and type."""
    import itertools
    import math

    from kestra_ops.yamlfast import _plain_scalar

    def typed(value):
        try:
            return _plain_scalar(value)
        except Exception as err:  # noqa: BLE001
            return ("refused", type(err).__name__)

    alphabet = "019+-_.eEoxbadmGi~tTfFnNul:= <"
    cases = ["".join(t) for n in range(4) for t in itertools.product(alphabet, repeat=n)]
    cases += ["true", "True", "TRUE", "tRue", "false", "FALSE", "null", "Null", "NULL", "nULL",
              "yes", "no", "on", "off", "y", "n", "-0", "+0", "00", "007", "0o17", "0x1F",
              "123456789012345678", "-123456789012345678", "1234567890123456789", "1_000",
              "2024-01-02", "2024-01-02T03:04:05Z", ".inf", "-.inf", ".nan", "1.5", "1e3",
              "kestra", "io.kestra.plugin.*", "١٢٣", "9" * 5000, "2Gi", "500m", "7d", "1.33.0",
              "2024-01-02 03:04:05", "2024-1-2T3:04:05.5+01:00", "1:30", "0b101", "0xfg"]
    for value in cases:
        fast, slow = typed(value), _ruamel_typed(value)
        if isinstance(fast, float) and math.isnan(fast):
            assert isinstance(slow, float) and math.isnan(slow), value
            continue
        assert (fast, type(fast)) == (slow, type(slow)), value


def test_the_shipped_values_and_config_read_without_importing_ruamel():
    """ruamel costs ~7 ms of a cold `values validate`: the shipped files never need it."""
    import subprocess
    import sys

    code = ("import sys\nfrom pathlib import Path\nfrom kestra_ops.yamlfast import load_plain, "
            "parse_plain\n"
            f"for p in Path({str(VALUES_DIR)!r}).glob('*.yaml'):\n"
            "    assert load_plain(p) is not None, p\n"
            f"assert parse_plain(Path({str(REPO_ROOT / 'kestra-ops.yaml')!r}).read_text())\n"
            "assert 'ruamel' not in sys.modules, sorted(m for m in sys.modules if 'ruamel' in m)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
