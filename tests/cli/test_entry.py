"""kestra_ops/entry.py: `values validate` with plain arguments runs without click, and prints
exactly what the click CLI prints (stdout, stderr, exit code) for the same inputs; anything
else is the CLI's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kestra_ops.entry import _FORMATS, plain_validate_args

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus" / "values"
CLICK = [sys.executable, "-c", "import sys; sys.argv[0] = 'kestra-ops'\n"
         "from kestra_ops.cli import main; main()"]
ENTRY = [sys.executable, "-m", "kestra_ops"]
# in a fresh interpreter: the fast path's own verdict, and what it imported
PROBE = [sys.executable, "-c", "import sys, json\nfrom kestra_ops.entry import values_validate\n"
         "code = values_validate(sys.argv[1:])\n"
         "sys.stdout.flush()\n"
         "print(json.dumps({'code': code, 'click': 'click' in sys.modules, 'inspect': "
         "getattr(sys.modules.get('inspect'), '__doc__', '') or ''}), file=sys.stderr)"]


def run(cmd: list[str], args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KESTRA_OPS_")}
    environ.update(KESTRA_OPS_CACHE_DIR=env.pop("cache", ""), **env)
    return subprocess.run([*cmd, *args], cwd=cwd, env=environ, capture_output=True, text=True,
                          timeout=60)


def test_the_formats_are_the_clis():
    from kestra_ops.output import format_names

    assert _FORMATS == set(format_names())


@pytest.mark.parametrize("argv, expected", [
    (["values", "validate", "a.yaml"], (["a.yaml"], None, False, "text")),
    (["values", "validate", "--no-cache", "a.yaml", "b.yaml"],
     (["a.yaml", "b.yaml"], None, True, "text")),
    (["values", "validate", "-o", "json", "a.yaml"], (["a.yaml"], None, False, "json")),
    (["values", "validate", "a.yaml", "--output=sarif"], (["a.yaml"], None, False, "sarif")),
    (["values", "validate", "--env", "dev"], ([], "dev", False, "text")),
    (["values", "validate", "-e", "dev", "a.yaml"], (["a.yaml"], "dev", False, "text")),
    (["values", "validate"], None),  # no file: the CLI's usage error (or KESTRA_OPS_ENV)
    (["values", "validate", "--env"], None),
    (["values", "validate", "--env", "--no-cache"], None),
    (["values", "validate", "--env=dev"], None),
    (["values", "validate", "-edev"], None),
    (["values", "validate", "-o", "xml", "a.yaml"], None),  # the CLI names the choices
    (["values", "validate", "-o"], None),
    (["values", "validate", "--", "-a.yaml"], None),
    (["values", "validate", "-"], None),
    (["values", "validate", ""], None),
    (["values", "validate", "--chart", "c", "a.yaml"], None),
    (["values", "validate", "--help"], None),
    (["values", "render", "--env", "dev"], None),
    (["--config", "k.yaml", "values", "validate", "a.yaml"], None),
    (["plan", "--env", "dev"], None),
    ([], None),
])
def test_only_plain_arguments_take_the_fast_path(argv, expected):
    assert plain_validate_args(argv) == expected


CASES = [
    (["values/production.yaml"], {}),
    (["values/base.yaml", "values/dev.yaml", "values/staging.yaml"], {}),
    (["--no-cache", "values/production.yaml"], {}),
    (["-o", "json", "values/production.yaml"], {}),
    (["--output=yaml", "values/staging.yaml"], {}),
    ([str(CORPUS / "basic-auth-password-too-short.yaml")], {}),
    (["-o", "sarif", str(CORPUS / "blacklist-only-invalid-globs.yaml")], {}),
    (["-o", "junit", str(CORPUS / "jdbc-url-mysql.yaml")], {}),
    (["-o", "github", str(CORPUS / "ds-mismatch-password.yaml")], {}),
    (["values/production.yaml"], {"KESTRA_OPS_NO_CACHE": "1"}),
    (["values/production.yaml"], {"KESTRA_OPS_NO_CACHE": "banana"}),  # the CLI decides
    (["values/production.yaml"], {"KESTRA_OPS_CONFIG": str(ROOT / "kestra-ops.yaml")}),
    (["values/production.yaml"], {"KESTRA_OPS_CONFIG": "/nonexistent/kestra-ops.yaml"}),
    (["values/production.yaml"], {"KESTRA_OPS_CONFIG": ""}),
    (["--env", "production"], {}),
    (["-e", "dev", "--no-cache"], {}),
    (["--env", "nosuchenv"], {}),
    (["--env", "dev", str(CORPUS / "blacklist-empty.yaml")], {}),
    ([str(CORPUS / "blacklist-empty.yaml")], {"KESTRA_OPS_ENV": "dev"}),
    ([str(CORPUS / "blacklist-empty.yaml")], {"KESTRA_OPS_ENV": "production"}),
    ([str(CORPUS / "blacklist-empty.yaml")], {"KESTRA_OPS_ENV": ""}),
    (["-e", "staging", "values/production.yaml"], {"KESTRA_OPS_ENV": "dev"}),
    (["missing.yaml"], {}),
    (["values"], {}),  # a directory
    (["/dev/null"], {}),
    (["README.md"], {}),
]


@pytest.mark.parametrize("args, env", CASES, ids=lambda v: str(v)[:60])
def test_the_fast_path_prints_what_the_cli_prints(args, env, tmp_path):
    argv = ["values", "validate", *args]
    cli = run(CLICK, argv, ROOT, cache=str(tmp_path / "a"), **env)
    fast = run(ENTRY, argv, ROOT, cache=str(tmp_path / "b"), **env)
    assert (fast.returncode, fast.stdout, fast.stderr) == (cli.returncode, cli.stdout,
                                                             cli.stderr)
    assert "Traceback" not in cli.stderr


def test_bad_yaml_is_reported_by_the_cli_the_same_way(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kestra:\n  url: [unclosed\n")
    argv = ["values", "validate", str(bad)]
    cli = run(CLICK, argv, ROOT, cache=str(tmp_path / "a"))
    fast = run(ENTRY, argv, ROOT, cache=str(tmp_path / "b"))
    assert cli.returncode == 2 and "bad.yaml:" in cli.stderr + cli.stdout
    assert (fast.returncode, fast.stdout, fast.stderr) == (cli.returncode, cli.stdout,
                                                             cli.stderr)


def test_a_plain_validate_imports_neither_click_nor_inspect(tmp_path):
    probe = run(PROBE, ["values", "validate", "values/production.yaml"], ROOT,
                cache=str(tmp_path))
    import json

    seen = json.loads(probe.stderr.strip().splitlines()[-1])
    assert seen["code"] == 0 and probe.stdout.endswith(": ok\n"), probe
    assert not seen["click"]
    assert seen["inspect"] == "inspect, imported on first use"  # never needed


def test_an_error_goes_to_the_cli(tmp_path):
    """A typed error (here: the kestra-ops.yaml named is missing) is not the fast path's to
    report: it prints nothing and leaves the command to the CLI."""
    probe = run(PROBE, ["values", "validate", "values/production.yaml"], ROOT,
                cache=str(tmp_path), KESTRA_OPS_CONFIG="/nonexistent/kestra-ops.yaml")
    assert probe.stdout == "" and '"code": null' in probe.stderr


@pytest.mark.parametrize("cmd", [ENTRY, CLICK], ids=["fast", "cli"])
def test_a_reader_that_left_keeps_the_reports_exit_code(cmd, tmp_path):
    """`kestra-ops values validate ... | head -1` with the reader gone before the report is
    written: no traceback, and the exit code is still the report's (1: it has errors)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KESTRA_OPS_")}
    environ["KESTRA_OPS_CACHE_DIR"] = str(tmp_path)
    bad = str(CORPUS / "basic-auth-password-too-short.yaml")
    proc = subprocess.Popen([*cmd, "values", "validate", bad], cwd=ROOT, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # the reader leaves at once
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 1, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_ctrl_c_on_the_fast_path_is_interrupted_130(monkeypatch, capsys):
    import signal

    from kestra_ops import entry
    from kestra_ops.workflows import values as workflow

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(workflow, "validate_report", interrupted)
    monkeypatch.setattr(entry.sys.stdout, "isatty", lambda: False, raising=False)
    before = signal.getsignal(signal.SIGINT)
    try:
        assert entry.values_validate(["values", "validate", "values/production.yaml"]) == 130
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # a second one is ignored
    finally:
        signal.signal(signal.SIGINT, before)
    assert capsys.readouterr().err == "interrupted\n"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("cmd", [ENTRY, CLICK], ids=["fast", "cli"])
def test_a_full_disk_on_stdout_is_one_line_exit_1(cmd, buffered, tmp_path):
    """Buffered (a CI runner) the write fails at the last flush, unbuffered at once: either
    way one line and exit 1, never Python's 'Exception ignored' and exit 120."""
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("KESTRA_OPS_") and k != "PYTHONUNBUFFERED"}
    environ["KESTRA_OPS_CACHE_DIR"] = str(tmp_path)
    if not buffered:
        environ["PYTHONUNBUFFERED"] = "1"
    with open("/dev/full", "w") as full:
        proc = subprocess.run([*cmd, "values", "validate", "values/production.yaml"], cwd=ROOT,
                              env=environ, stdout=full, stderr=subprocess.PIPE, text=True,
                              timeout=60)
    assert proc.returncode == 1
    assert "No space left on device" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_closed_stdout_is_one_line_exit_1_not_a_traceback(tmp_path):
    """Started with stdout closed (`>&-`): the CLI says the result could not be written."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KESTRA_OPS_")}
    environ["KESTRA_OPS_CACHE_DIR"] = str(tmp_path)
    proc = subprocess.run(["sh", "-c", 'exec >&-; exec "$@"', "sh", *ENTRY, "values",
                           "validate", "values/production.yaml"], cwd=ROOT, env=environ,
                          stderr=subprocess.PIPE, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == "error: cannot write the result to stdout: stdout is closed\n"
