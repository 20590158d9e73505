"""Property tests of the YAML loaders (values files, flow files, kestra-ops.yaml): any input
yields a result or a typed error with exit code 2 — never a traceback, a hang or a crash.

In process, hypothesis drives each loader with a deadline per example (a hang is a failure). A
crash (SIGSEGV in a C parser, a runaway allocation) would take the test run down with it, so a
batch of hostile inputs is also run through the CLI in a child process, where a signal or a
traceback fails the test instead.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kestra_ops.errors import EXIT_USAGE, InvalidInput
from kestra_ops.workflows.flows.yamldoc import parse_flow
from kestra_ops.yamlio import load_yaml_file, load_yaml_text

REPO_ROOT = Path(__file__).resolve().parents[2]
PROPS = settings(max_examples=150, deadline=timedelta(seconds=3), derandomize=True,
                 database=None, suppress_health_check=[HealthCheck.too_slow,
                                                       HealthCheck.function_scoped_fixture])

# ---------------------------------------------------------------------------- inputs

_PUNCT = list("[]{}:,-?&*!|>'\"#%@` \n\t.=~^$\\")
_WORDS = ["a", "id", "namespace", "tasks", "type", "true", "no", "null", "~", "1e9", "0x1F",
          "0o7", ".inf", "2024-02-30", "<<", "&a", "*a", "!!int", "!!python/object", "!tag",
          "---", "...", "%YAML 1.2", "- ", ": ", "? ", "|", ">-", "\ufeff", "\x85", "\u2028",
          "é", "١٢٣", "\ud800", "\x00", "\x1b", "9" * 40, "'", '"']
TOKENS = st.one_of(st.sampled_from(_PUNCT), st.sampled_from(_WORDS),
                   st.text(min_size=1, max_size=6))


@st.composite
def yamlish(draw) -> str:
    """Token soup, sometimes with a repeated opener (deep nesting) or a long run."""
    parts = draw(st.lists(TOKENS, max_size=60))
    if draw(st.booleans()):
        opener = draw(st.sampled_from(["[", "{a: ", "- ", "  " * 3 + "k:\n", "&x [*x, ", "? "]))
        parts.insert(draw(st.integers(0, len(parts))), opener * draw(st.integers(1, 400)))
    return "".join(parts)


def _nested(depth: int, rnd: random.Random) -> str:
    kind = rnd.choice(["flow-seq", "flow-map", "block-seq", "block-map", "mixed"])
    if kind == "flow-seq":
        return "[" * depth + "x" + "]" * rnd.choice([depth, 0])
    if kind == "flow-map":
        return "{a: " * depth + "1" + "}" * depth
    if kind == "block-seq":
        return "- " * depth + "x"
    if kind == "block-map":
        return "".join(" " * i + f"k{i}:\n" for i in range(depth)) + " " * depth + "v"
    return "".join(rnd.choice(["[", "{a: ", "- "]) for _ in range(depth))


STRUCTURED = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
              st.floats(allow_nan=True)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=5), children, max_size=4)),
    max_leaves=30)


def _dump(value) -> str:
    import yaml

    return yaml.safe_dump(value, default_flow_style=None, allow_unicode=True)


def _typed(err: BaseException, *, one_line: bool = True) -> None:
    assert isinstance(err, InvalidInput), f"{type(err).__name__}: {err}"
    assert err.exit_code == EXIT_USAGE
    assert str(err).strip()
    if one_line:
        assert "\n" not in str(err).strip(), str(err)


# ---------------------------------------------------------------------------- in process

@PROPS
@given(text=st.one_of(yamlish(), st.text(max_size=200), STRUCTURED.map(_dump)))
def test_values_loader_returns_or_refuses(text):
    try:
        load_yaml_text(text, "values.yaml")
    except Exception as err:  # noqa: BLE001 - the property: only typed errors
        _typed(err)


@PROPS
@given(text=st.one_of(yamlish(), st.text(max_size=200), STRUCTURED.map(_dump)))
def test_flow_parser_returns_or_refuses(text):
    try:
        parse_flow(text, "flows/f.yaml")
    except Exception as err:  # noqa: BLE001
        _typed(err)


@PROPS
@given(raw=st.one_of(st.binary(max_size=300), yamlish().map(lambda t: t.encode("utf-8",
                                                                              "surrogatepass"))))
def test_values_file_of_any_bytes_returns_or_refuses(raw, tmp_path):
    path = tmp_path / "values.yaml"
    path.write_bytes(raw)
    try:
        load_yaml_file(path)
    except Exception as err:  # noqa: BLE001
        _typed(err)


@PROPS
@given(text=st.one_of(yamlish(), STRUCTURED.map(_dump),
                      STRUCTURED.map(lambda v: _dump({"environments": {"dev": v}}))))
def test_config_loader_returns_or_refuses(text, tmp_path):
    from kestra_ops.settings import load_config

    path = tmp_path / "kestra-ops.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        config = load_config(path, environ={})
        for name in list(config.environments)[:3]:
            config.environment(name)
    except Exception as err:  # noqa: BLE001
        # (the configuration's own messages may quote a key as written, newlines included)
        _typed(err, one_line=False)


@PROPS
@given(text=st.one_of(yamlish(), STRUCTURED.map(_dump)))
def test_flows_validate_of_any_file_gives_a_report(text, tmp_path):
    from kestra_ops.values.findings import exit_code
    from kestra_ops.workflows.flows.local import validate_local

    folder = tmp_path / "flows"
    folder.mkdir(exist_ok=True)
    (folder / "f.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        result = validate_local(folder)
    except Exception as err:  # noqa: BLE001
        _typed(err)
        return
    assert exit_code([result.report]) in (0, 1, 2)


# ---------------------------------------------------------------------------- in a child process

def _hostile(count: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    head = "id: f\nnamespace: company.team\ntasks:\n  - id: a\n    type: x\n    v: "
    out = []
    for i in range(count):
        depth = rnd.choice([150, 201, 1_000, 30_000, 100_000])
        body = _nested(depth, rnd)
        out.append((head if i % 2 else "a: ") + body + "\n")
    return out


@pytest.mark.parametrize("command", ["flows", "values"])
def test_hostile_inputs_never_crash_the_cli(command, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i, text in enumerate(_hostile(12, seed=12 if command == "flows" else 21)):
        (folder / f"case{i:02}.yaml").write_text(text)
    files = sorted(str(p) for p in folder.iterdir())
    args = ["flows", "validate", str(folder)] if command == "flows" else \
        ["values", "validate", "--env", "production", *files]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KESTRA_OPS_")}
    env["KESTRA_OPS_NO_CACHE"] = "1"
    try:
        done = subprocess.run([sys.executable, "-m", "kestra_ops", *args], cwd=REPO_ROOT,
                              env=env, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail("the CLI hung on hostile input")
    out = done.stdout + done.stderr
    assert done.returncode in (0, 1, 2), f"exit {done.returncode} (negative: a signal)\n{out}"
    assert "Traceback" not in out and "internal error" not in out, out
