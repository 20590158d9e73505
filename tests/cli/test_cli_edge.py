"""The CLI edge (issue 12, item 15): a reader that leaves (`| head -1`) is not a failure, two
quick Ctrl-C end in exit 130 without a traceback, and no kubeconfig is invalid input (exit 2)
for every command that needs the cluster. Real processes, real pipes, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.helpers_net import unreachable_kubeconfig

ROOT = Path(__file__).resolve().parents[2]
EXE = [sys.executable, "-m", "kestra_ops"]
NOISE = ("Traceback", "Exception ignored", "BrokenPipeError", "Aborted!")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KESTRA_OPS_")}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    return {**env, "KESTRA_OPS_NO_CACHE": "1", **extra}


def closed_reader(args: list[str], cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess:
    """Run with stdout a pipe whose reader is gone before anything is written."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([*EXE, *args], stdout=write, stderr=subprocess.PIPE, cwd=cwd,
                              env=clean_env(**env), timeout=120, check=False, text=True)
    finally:
        os.close(write)


# --------------------------------------------------------------------------- broken pipe

@pytest.mark.parametrize("args", [
    ["values", "rules"], ["values", "rules", "--output", "json"],
    ["values", "render", "--env", "production"], ["values", "validate", "--env", "production"],
    ["--help"], ["values", "--help"], ["--version"]])
def test_a_reader_that_left_is_not_a_failure(args):
    proc = closed_reader(args)
    assert proc.returncode == 0, proc.stderr
    assert not any(word in proc.stderr for word in NOISE), proc.stderr


def test_a_failed_report_keeps_its_exit_code_when_the_reader_left(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("standalone:\n  workerThreads: many\n")
    proc = closed_reader(["values", "validate", str(bad), "--env", "dev"])
    assert proc.returncode == 1, proc.stderr
    assert not any(word in proc.stderr for word in NOISE), proc.stderr


def test_head_of_a_large_output(tmp_path):
    """`kestra-ops values render ... | head -c 16` with megabytes to write: exit 0, quiet."""
    big = tmp_path / "big.yaml"
    big.write_text("extraEnv:\n" + "".join(f"  - {{name: VAR_{i}, value: v{i}}}\n"
                                             for i in range(15000)))
    proc = subprocess.Popen([*EXE, "values", "render", "--env", "dev", "-f", str(big)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                            env=clean_env())
    assert proc.stdout.read(16)
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert not any(word in err.decode() for word in NOISE), err


def test_a_closed_stderr_does_not_change_the_exit_code(tmp_path):
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([*EXE, "values", "validate", str(tmp_path / "missing.yaml")],
                              stdout=subprocess.PIPE, stderr=write, cwd=ROOT, env=clean_env(),
                              timeout=120, check=False)
    finally:
        os.close(write)
    assert proc.returncode == 2


@pytest.mark.parametrize("layer, code", [("standalone:\n  workerThreads: 4\n", 0),
                                         ("standalone:\n  workerThreads: many\n", 1)])
def test_progress_to_a_closed_stderr_never_stops_the_command(tmp_path, layer, code):
    """`plan ... 2>&1 | head -1`-like: the progress cannot be written; the command still runs to
    its end, prints its result and keeps its verdict (never exit 0 without having run)."""
    (tmp_path / "values").mkdir()
    (tmp_path / "values" / "base.yaml").write_text((ROOT / "values" / "base.yaml").read_text())
    (tmp_path / "values" / "dev.yaml").write_text(layer)
    (tmp_path / "kestra-ops.yaml").write_text(
        f"defaults: {{chart: {ROOT / 'charts' / 'kestra'}}}\nenvironments:\n  dev: {{}}\n")
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([*EXE, "plan", "--env", "dev"], stdout=subprocess.PIPE,
                              stderr=write, cwd=tmp_path, env=clean_env(), timeout=120,
                              check=False, text=True)
    finally:
        os.close(write)
    assert proc.returncode == code, proc.stdout
    assert proc.stdout.rstrip().endswith("plan dev: ok" if code == 0 else "plan dev: FAILED")
    assert "chart lint" in proc.stdout


# --------------------------------------------------------------------------- Ctrl-C twice

@pytest.fixture(scope="module")
def unreachable(tmp_path_factory) -> Path:
    """A project whose cluster (and so Kestra, through the service proxy) does not answer."""
    root = tmp_path_factory.mktemp("unreachable")
    unreachable_kubeconfig(root / "kubeconfig", context="dev")
    (root / "kestra-ops.yaml").write_text(
        f"defaults: {{chart: {ROOT / 'charts' / 'kestra'}}}\nenvironments:\n"
        f"  dev: {{values: [{ROOT / 'values' / 'base.yaml'}, {ROOT / 'values' / 'dev.yaml'}]}}\n")
    return root


def interrupted_twice(project: Path, first: float, gap: float) -> subprocess.CompletedProcess:
    proc = subprocess.Popen([*EXE, "check", "--env", "dev", "--wait", "60s"], cwd=project,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=clean_env(KUBECONFIG=str(project / "kubeconfig"),
                                          PYTHONFAULTHANDLER="1"))
    time.sleep(first)
    proc.send_signal(signal.SIGINT)
    time.sleep(gap)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=40)
    except subprocess.TimeoutExpired:  # a hang: the threads' stacks say where
        proc.send_signal(signal.SIGABRT)
        out, err = proc.communicate(timeout=30)
        pytest.fail(f"hung after two Ctrl-C:\n{err[-8000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("gap", [0.0, 0.02, 0.1, 0.3])
def test_a_second_ctrl_c_exits_130_cleanly(unreachable, gap):
    for _ in range(3):
        proc = interrupted_twice(unreachable, 2.0, gap)
        assert proc.returncode == 130, (proc.returncode, proc.stderr)
        assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, \
            proc.stderr
        assert "interrupted" in proc.stderr


# --------------------------------------------------------------------------- no kubeconfig

@pytest.fixture
def no_kubeconfig(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("KESTRA_OPS_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nowhere" / "kubeconfig"))
    monkeypatch.setenv("KESTRA_OPS_NO_CACHE", "1")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "kestra-ops.yaml").write_text(
        f"defaults: {{chart: {ROOT / 'charts' / 'kestra'}}}\nenvironments:\n"
        f"  dev: {{values: [{ROOT / 'values' / 'base.yaml'}, {ROOT / 'values' / 'dev.yaml'}]}}\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("args", [
    ["preflight"], ["check"], ["check", "--only", "kestra-api,login"], ["history"],
    ["deploy", "--yes"], ["rollback", "--yes"],
    ["doctor"], ["lock", "status"], ["release", "--yes"],
    ["config", "patch", "--set", "kestra.x=1", "--yes"]])
def test_no_kubeconfig_is_invalid_input_everywhere(no_kubeconfig, args):
    from kestra_ops.cli import cli

    result = CliRunner().invoke(cli, [*args, "--env", "dev"])
    assert result.exit_code == 2, (result.exit_code, result.output)
    said = result.stdout + result.stderr  # (release says it in its report)
    assert "kubeconfig" in said.lower() and "nowhere" in said, said
    assert "Traceback" not in result.output and "internal error" not in result.output
