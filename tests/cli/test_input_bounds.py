"""Bounded input (issue 12, items 7 and 8), each case in a child process so that a crash
(SIGSEGV), a hang or a runaway allocation fails the test instead of the test run.

Every YAML path (values files, flow files, kestra-ops.yaml, the patch file of `config patch`)
checks nesting depth and node count with an event pass before composing; every read refuses
what is not a regular file (a FIFO, /dev/zero) and reads at most the size limit.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FLOW_HEAD = "id: deep\nnamespace: company.team\ntasks:\n"
DEEP = {
    "flow-brackets": "  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: "
                     + "[" * 30_000 + "]" * 30_000 + "\n",
    "block-sequences": "  " + "- " * 100_000 + "x\n",
    "flow-mappings": "  - " + "{a: " * 20_000 + "1" + "}" * 20_000 + "\n",
}
MEMORY_CAP = 3 * 1024 ** 3  # a child that tries to read /dev/zero whole dies here, not the host


def _limit_memory():  # pragma: no cover - runs in the child
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def kestra_ops(*args: str, cwd: Path = REPO_ROOT, timeout: float = 60,
               env: dict | None = None) -> tuple[subprocess.CompletedProcess, float]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KESTRA_OPS_")}
    clean.update({"KESTRA_OPS_NO_CACHE": "1", **(env or {})})
    start = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "kestra_ops", *args], cwd=cwd, env=clean,
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired:
        pytest.fail(f"kestra-ops {' '.join(args)} did not finish within {timeout:.0f}s")
    return done, time.monotonic() - start


def python(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=timeout, preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired:
        pytest.fail(f"did not finish within {timeout:.0f}s: {code}")


def refused(done: subprocess.CompletedProcess, *needles: str) -> str:
    out = done.stdout + done.stderr
    assert done.returncode == 2, f"exit {done.returncode} (negative: killed by a signal)\n{out}"
    assert "Traceback" not in out and "internal error" not in out, out
    for needle in needles:
        assert needle in out, out
    return out


# --------------------------------------------------------------------------- depth (item 7)

@pytest.mark.parametrize("shape", sorted(DEEP))
def test_deep_flow_file_is_refused_not_a_crash(shape, tmp_path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "deep.yaml").write_text(FLOW_HEAD + DEEP[shape])
    done, took = kestra_ops("flows", "validate", str(tmp_path / "flows"))
    out = refused(done, "yaml/too-deep")
    assert "deep.yaml:" in out
    assert took < 20, f"took {took:.1f}s"


@pytest.mark.parametrize("shape", sorted(DEEP))
def test_deep_values_file_is_refused(shape, tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("image:\n  tag: x\nextra:\n" + DEEP[shape])
    done, took = kestra_ops("values", "validate", "--env", "production", str(path))
    refused(done, "yaml/too-deep")
    assert took < 20, f"took {took:.1f}s"


@pytest.mark.parametrize("shape", sorted(DEEP))
def test_deep_config_file_is_refused(shape, tmp_path):
    path = tmp_path / "kestra-ops.yaml"
    path.write_text("environments:\n  dev:\n    values: [a.yaml]\nx:\n" + DEEP[shape])
    done, _ = kestra_ops("--config", str(path), "values", "validate", "--env", "dev",
                         cwd=tmp_path)
    refused(done, "nest", "kestra-ops.yaml")


@pytest.mark.parametrize("shape", sorted(DEEP))
def test_deep_patch_file_is_refused_by_the_loader_config_patch_uses(shape, tmp_path):
    path = tmp_path / "patch.yaml"
    path.write_text("kestra:\n  x:\n" + DEEP[shape])
    done = python("import sys\nfrom kestra_ops.yamlio import YamlLoadError, load_yaml_file\n"
                  f"try:\n    load_yaml_file({str(path)!r})\n"
                  "except YamlLoadError as err:\n    print(err.rule, err)\n    sys.exit(2)\n")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout.startswith("yaml/too-deep"), done.stdout


def test_deep_flow_returned_by_the_server_is_not_a_crash():
    """The server's copy of a flow (export, backfill) goes through the same parser."""
    text = FLOW_HEAD + DEEP["flow-brackets"]
    done = python("from kestra_ops.workflows.flows.yamldoc import parse_flow\n"
                  "from kestra_ops.yamlio import YamlLoadError\n"
                  f"try:\n    parse_flow({text!r}, 'server')\n"
                  "except YamlLoadError as err:\n    print(err.rule)\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "yaml/too-deep"


# --------------------------------------------------------------------------- size (item 8)

def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "values.yaml"
    os.mkfifo(fifo)
    done, took = kestra_ops("values", "validate", "--env", "production", str(fifo), timeout=30)
    refused(done, "io/unreadable", "not a regular file")
    assert took < 20


def test_dev_zero_is_refused_without_reading_it():
    done, took = kestra_ops("values", "validate", "--env", "production", "/dev/zero",
                            timeout=30)
    refused(done, "io/unreadable", "not a regular file")
    assert took < 20


def test_a_fifo_among_the_flows_is_refused_without_waiting(tmp_path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "ok.yaml").write_text(
        FLOW_HEAD + "  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
    os.mkfifo(tmp_path / "flows" / "pipe.yaml")
    done, _ = kestra_ops("flows", "validate", "flows", cwd=tmp_path, timeout=30)
    refused(done, "flows/pipe.yaml:1:1: error io/unreadable", "not a regular file")
    done, _ = kestra_ops("flows", "validate", "flows/pipe.yaml", cwd=tmp_path, timeout=30)
    refused(done, "not a regular file")


def test_a_fifo_as_the_config_file_is_refused(tmp_path):
    os.mkfifo(tmp_path / "kestra-ops.yaml")
    done, _ = kestra_ops("--config", "kestra-ops.yaml", "values", "validate", "--env", "dev",
                         cwd=tmp_path, timeout=30)
    refused(done, "not a regular file")


LARGE = {
    "block-list": "items:\n" + "- a\n" * 1_000_000,
    "mapping": "".join(f"k{i}: v\n" for i in range(350_000)),
    "flow-list": "items: [" + "a," * 1_900_000 + "a]\n",
}


@pytest.mark.parametrize("shape", sorted(LARGE))
def test_a_large_plain_document_stops_at_the_node_limit_fast(shape, tmp_path):
    path = tmp_path / "large.yaml"
    path.write_text(LARGE[shape])
    assert path.stat().st_size < 4 * 1024 * 1024  # under the size limit
    done, took = kestra_ops("values", "validate", "--env", "production", str(path))
    out = refused(done, "too many nodes")
    assert "alias" not in out
    assert took < 10, f"took {took:.1f}s"
    (tmp_path / "flows").mkdir()
    path.rename(tmp_path / "flows" / "large.yaml")
    done, took = kestra_ops("flows", "validate", "flows", cwd=tmp_path)
    out = refused(done, "too many nodes")
    assert "alias" not in out
    assert took < 10, f"took {took:.1f}s"
