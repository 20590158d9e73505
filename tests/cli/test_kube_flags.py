"""The cluster a command talks to: --kube-context, --kubeconfig, -n/--namespace and --release.

Precedence for each: flag > KESTRA_OPS_* variable > kestra-ops.yaml > default, through the
library (Config.environment) and through the CLI; every command that talks to the cluster takes
the four flags (the command tree is walked, so a new command cannot forget them); a bad value is
one line, exit 2; and the commands name the context and namespace in use."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from kestra_ops.cli import cli
from kestra_ops.errors import ConfigError
from kestra_ops.results import Report
from kestra_ops.settings import load_config

VARIABLES = {"context": "KESTRA_OPS_CONTEXT", "kubeconfig": "KESTRA_OPS_KUBECONFIG",
             "namespace": "KESTRA_OPS_NAMESPACE", "release": "KESTRA_OPS_RELEASE"}
FLAGS = {"context": "--kube-context", "kubeconfig": "--kubeconfig", "namespace": "-n",
         "release": "--release"}
DEFAULTS = {"context": None, "kubeconfig": None, "namespace": "hyperplane-kestra",
            "release": "kestra"}
# what the file, the variable and the flag give, per setting
GIVEN = {"context": ("ctx-file", "ctx-var", "ctx-flag"),
         "kubeconfig": ("/k/file.yaml", "/k/var.yaml", "/k/flag.yaml"),
         "namespace": ("ns-file", "ns-var", "ns-flag"),
         "release": ("rel-file", "rel-var", "rel-flag")}

# commands that never talk to the cluster, and why (a new command is a cluster command unless
# it is named here)
NO_CLUSTER = {
    "values render": "renders values files",
    "values validate": "validates values files (the fast path, no cluster)",
    "values rules": "lists the rules",
    "backup list": "reads the bucket only",
    "backup verify": "reads the bucket only",
    "backup prune": "the bucket only",
    "backup keygen": "writes a new age identity file",
    "backup migrate-location": "the legacy location and the backup bucket only",
    "minio check": "the MinIO endpoint only",
    "minio policy": "prints a policy document",
    "completion": "prints a shell script",
    "init": "writes files in a folder",
}
RENDER_ONLY = {"plan", "chart lint"}  # render the chart: namespace and release only


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    for var in (*VARIABLES.values(), "KESTRA_OPS_ENV", "KESTRA_OPS_CONFIG"):
        monkeypatch.delenv(var, raising=False)


def write_config(folder: Path, key: str | None) -> Path:
    """kestra-ops.yaml with env ``dev`` setting ``key`` (None: nothing set)."""
    line = ""
    if key is not None:
        line = f"    {key}: {GIVEN[key][0]}\n"
    (folder / "kestra-ops.yaml").write_text(
        "environments:\n  dev:\n" + line + "    values: [values/base.yaml]\n")
    return folder / "kestra-ops.yaml"


def value_of(env, key: str):
    return env.kubeconfig_file if key == "kubeconfig" else getattr(env, key)


# ------------------------------------------------------------------------------ the library

@pytest.mark.parametrize("key", list(VARIABLES))
def test_library_flag_beats_variable_beats_file_beats_default(tmp_path, key):
    file_value, var_value, flag_value = GIVEN[key]
    bare = tmp_path / "bare"
    bare.mkdir()
    write_config(bare, None)
    env = load_config(start=bare, environ={}).environment("dev", environ={})
    assert value_of(env, key) == DEFAULTS[key]

    write_config(tmp_path, key)
    config = load_config(start=tmp_path, environ={})
    env = config.environment("dev", environ={})
    assert (value_of(env, key), env.sources[key]) == (file_value, "config")
    env = config.environment("dev", environ={VARIABLES[key]: var_value})
    assert (value_of(env, key), env.sources[key]) == (var_value, "environment")
    env = config.environment("dev", environ={VARIABLES[key]: var_value},
                             flags={key: flag_value})
    assert (value_of(env, key), env.sources[key]) == (flag_value, "flag")


def test_library_kubeconfig_from_the_file_is_relative_to_its_folder(tmp_path, monkeypatch):
    (tmp_path / "kestra-ops.yaml").write_text(
        "environments:\n  dev: {kubeconfig: kube/dev.yaml}\n")
    env = load_config(start=tmp_path, environ={}).environment("dev", environ={})
    assert env.kubeconfig == str(tmp_path.resolve() / "kube" / "dev.yaml")
    monkeypatch.setenv("KESTRA_OPS_KUBECONFIG", "/elsewhere")  # chosen already: the file's
    assert env.kubeconfig == str(tmp_path.resolve() / "kube" / "dev.yaml")


@pytest.mark.parametrize("key,bad", [("namespace", "Bad_NS"), ("release", "-rel"),
                                     ("context", "-ctx"), ("kubeconfig", "--exec=x")])
def test_library_flags_and_variables_pass_the_files_rules(tmp_path, key, bad):
    write_config(tmp_path, None)
    config = load_config(start=tmp_path, environ={})
    with pytest.raises(ConfigError, match=VARIABLES[key]):
        config.environment("dev", environ={VARIABLES[key]: bad})
    with pytest.raises(ConfigError, match="--opt-name"):
        config.environment("dev", environ={}, flags={key: bad}, flag_names={key: "--opt-name"})


def test_the_files_kubeconfig_is_checked_with_its_line(tmp_path):
    (tmp_path / "kestra-ops.yaml").write_text("environments:\n  dev:\n    kubeconfig: -x\n")
    with pytest.raises(ConfigError, match=r"kestra-ops.yaml:3: environments.dev.kubeconfig"):
        load_config(start=tmp_path, environ={"KESTRA_OPS_NO_CACHE": "1"})


# ------------------------------------------------------------------------------ the CLI

@pytest.fixture
def seen(monkeypatch):
    """The environments `lock status` was given (its workflow stands in: no cluster)."""
    envs = []

    def status_report(env):
        envs.append(env)
        return Report("lock status", env.name)

    monkeypatch.setattr("kestra_ops.workflows.deploy.lock_admin.status_report", status_report)
    return envs


@pytest.mark.parametrize("key", list(VARIABLES))
def test_cli_flag_beats_variable_beats_file_beats_default(tmp_path, monkeypatch, seen, key):
    file_value, var_value, flag_value = GIVEN[key]
    runner = CliRunner()
    bare = tmp_path / "bare"
    bare.mkdir()
    monkeypatch.chdir(bare)
    write_config(bare, None)
    assert runner.invoke(cli, ["lock", "status", "-e", "dev"]).exit_code == 0
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, key)
    assert runner.invoke(cli, ["lock", "status", "-e", "dev"]).exit_code == 0
    monkeypatch.setenv(VARIABLES[key], var_value)
    assert runner.invoke(cli, ["lock", "status", "-e", "dev"]).exit_code == 0
    result = runner.invoke(cli, ["lock", "status", "-e", "dev", FLAGS[key], flag_value])
    assert result.exit_code == 0, result.output
    assert [value_of(env, key) for env in seen] == [DEFAULTS[key], *GIVEN[key]]
    assert [env.sources.get(key) for env in seen][1:] == ["config", "environment", "flag"]


def test_cli_long_namespace_and_all_four_together(tmp_path, monkeypatch, seen):
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, None)
    result = CliRunner().invoke(cli, ["lock", "status", "-e", "dev", "--namespace", "ns-a",
                                      "--release", "r-a", "--kube-context", "c-a",
                                      "--kubeconfig", "/k/a.yaml"])
    assert result.exit_code == 0, result.output
    env = seen[0]
    assert (env.namespace, env.release, env.context, env.kubeconfig) == \
        ("ns-a", "r-a", "c-a", "/k/a.yaml")


@pytest.mark.parametrize("args,named", [
    (["-n", "Bad_NS"], "-n/--namespace"), (["--namespace", "-dash"], "-n/--namespace"),
    (["--release", "a" * 54], "--release"), (["--kube-context", "-c"], "--kube-context"),
    (["--kubeconfig", "-k"], "--kubeconfig")])
def test_cli_bad_value_is_one_line_exit_2(tmp_path, monkeypatch, seen, args, named):
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, None)
    result = CliRunner().invoke(cli, ["lock", "status", "-e", "dev", *args])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {named}: "), result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2  # the error (and a hint, if any)
    assert seen == []  # the workflow never ran


# ------------------------------------------------------------------------------ every command

def leaf_commands():
    ctx = click.Context(cli)
    out = {}

    def walk(command, path):
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), [*path, name])
        else:
            out[" ".join(path)] = command
    walk(cli, [])
    return out


def kube_settings(command) -> dict[str, list[str]]:
    """setting -> the option names that give it (the kube options: params kube_flag_<key>)."""
    return {p.name[len("kube_flag_"):]: p.opts for p in command.params
            if isinstance(p, click.Option) and (p.name or "").startswith("kube_flag_")}


def test_every_cluster_command_takes_the_four_flags():
    commands = leaf_commands()
    assert set(NO_CLUSTER) <= set(commands) and RENDER_ONLY <= set(commands)
    checked = 0
    for name, command in commands.items():
        settings = kube_settings(command)
        if name in NO_CLUSTER:
            assert settings == {}, name
            continue
        want = {"namespace", "release"} if name in RENDER_ONLY else set(VARIABLES)
        assert set(settings) == want, f"{name}: {sorted(settings)}"
        if "context" in want:
            assert settings["context"] == ["--kube-context"], name
            assert settings["kubeconfig"] == ["--kubeconfig"], name
        assert settings["release"] == ["--release"], name
        # flows: --namespace is a Kestra namespace there, so the install's is --kube-namespace
        expected = ["--kube-namespace"] if name.startswith("flows ") else ["-n", "--namespace"]
        assert settings["namespace"] == expected, name
        checked += 1
    assert checked >= 24  # (the 24 of this writing)


ARGS = {  # what each command needs besides --env to reach its environment
    "flows validate": ["flows"], "flows plan": ["flows"], "flows apply": ["flows"],
    "flows promote": ["flows", "--from", "staging", "--to", "production"],
    "flows backfill": ["company", "flow", "--start", "2026-11-20T00:00:00",
                       "--end", "2026-11-20T01:00:00"],
    "flows export": ["--to", "exported"],
    "config patch": ["--set", "kestra.x=1"], "config restore": ["some-backup"],
    "backup restore": ["latest"],
    "upgrade plan": ["--to", "1.3.22"], "upgrade run": ["--to", "1.3.22"],
    "upgrade restore": ["--set", "20261206T000000Z"],
}


def test_every_cluster_command_hands_its_flags_to_the_environment(tmp_path, monkeypatch):
    """Each command's flags reach the environment (checked there: a bad value, exit 2 naming
    the flag, before anything runs)."""
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, None)
    runner = CliRunner()
    for name, command in leaf_commands().items():
        settings = kube_settings(command)
        if not settings:
            continue
        for key, opts in settings.items():
            bad = "-bad" if key in ("context", "kubeconfig") else "Bad_Name"
            result = runner.invoke(cli, [*name.split(), "-e", "dev", *ARGS.get(name, []),
                                         opts[-1], bad])
            assert result.exit_code == 2, (name, key, result.output)
            assert f"{opts[-1]}: " in result.stderr and bad in result.stderr, \
                (name, key, result.stderr)


# ------------------------------------------------------------------------------ what is shown

def test_preflight_names_the_context_namespace_and_release(fake_kube, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, None)
    monkeypatch.delenv("KESTRA_OPS_CONTEXT")  # the kubeconfig's current context is used
    monkeypatch.delenv("KUBECONFIG")
    result = CliRunner().invoke(cli, ["preflight", "-e", "dev", "--skip-bucket",
                                      "--kubeconfig", str(fake_kube.kubeconfig), "-n", "ns-x",
                                      "--release", "rel-x"])
    assert result.exit_code in (0, 1), result.output
    assert result.stdout.splitlines()[0] == \
        "preflight dev (namespace ns-x, release rel-x, context fake)"
    assert result.stderr.splitlines()[0] == \
        "preflight dev: release rel-x in ns-x (context fake)"


def test_check_progress_starts_with_the_context_in_use(fake_kube, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, None)
    result = CliRunner().invoke(cli, ["check", "-e", "dev", "--only", "pods", "-n", "ns-y",
                                      "--kube-context", "fake"])
    assert result.stderr.splitlines()[0] == \
        "check dev: release kestra in ns-y (context fake)", result.stderr
