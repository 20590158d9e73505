"""The ``kestra-ops`` command line: parse, call the library, render. No logic lives here.

Exit codes: 0 success; 1 a check or operation failed; 2 invalid input or usage;
3 changes found (commands with --detailed-exitcode); 130 interrupted.
"""

from __future__ import annotations

import os
import sys

import click

from kestra_ops import __version__
from kestra_ops.errors import EXIT_FAILED, EXIT_INTERRUPTED, KestraOpsError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class State:
    """Per-invocation state shared by the commands (set by the top-level group)."""

    def __init__(self, config_path: str | None, debug: bool):
        self.config_path = config_path
        self.debug = debug
        self._config = None

    @property
    def config(self):
        if self._config is None:
            from kestra_ops.settings import load_config

            self._config = load_config(self.config_path)
        return self._config

    def environment(self, name: str, **flags):
        return self.config.environment(name, flags={k: v for k, v in flags.items() if v is not None})


class KestraOpsGroup(click.Group):
    """Catches typed errors once, at the edge: one line on stderr and the documented exit code.

    Subcommands are imported only when used (``LAZY``), so ``--help`` stays fast.
    """

    # name -> (module, attribute, the one-line help `kestra-ops --help` shows without importing)
    LAZY = {
        "values": ("kestra_ops.cli.values", "values",
                   "Layered values: render an environment's values, validate values files."),
        "chart": ("kestra_ops.cli.chart", "chart", "Our Helm chart (charts/kestra)."),
        "plan": ("kestra_ops.cli.plan", "plan_cmd",
                 "Offline main job: render + validate + chart lint for ENV."),
        "preflight": ("kestra_ops.cli.preflight", "preflight_cmd",
                      "Check that a deploy to ENV can succeed, before anything changes."),
        "secrets": ("kestra_ops.cli.secrets", "secrets",
                    "The Kubernetes Secrets the chart reads (existingSecrets in values)."),
        "minio": ("kestra_ops.cli.minio", "minio",
                  "The environment's bucket on the shared MinIO (or any S3 store): setup and "
                  "check."),
        "deploy": ("kestra_ops.cli.deploy", "deploy_cmd",
                   "Deploy ENV: validate, preflight, diff, then helm upgrade --install --wait."),
        "release": ("kestra_ops.cli.release", "release_cmd",
                    "Release ENV: validate, diff, back up, deploy, check, roll back on failure, "
                    "explain."),
        "history": ("kestra_ops.cli.history", "history_cmd",
                    "Show the revisions of ENV's Helm release, oldest first."),
        "rollback": ("kestra_ops.cli.history", "rollback_cmd",
                     "Roll ENV's Helm release back to an earlier revision."),
        "lock": ("kestra_ops.cli.lock", "lock",
                 "The deploy lock of ENV (Lease kestra-ops-deploy): show it, break one left "
                 "by a dead process."),
        "config": ("kestra_ops.cli.config", "config",
                   "Patch ConfigMap kestra-config (the server's application.yml) with a backup."),
        "flows": ("kestra_ops.cli.flows", "flows",
                  "Flows as code: validate, plan and apply a directory of flows, export, "
                  "promote, backfill."),
        "check": ("kestra_ops.cli.check", "check_cmd",
                  "Run the post-deploy checklist for ENV: each item PASS, WARN or FAIL."),
        "backup": ("kestra_ops.cli.backup", "backup",
                   "Backup sets in the env's bucket: database, flows and config; verify, "
                   "restore, drill."),
        "doctor": ("kestra_ops.cli.doctor", "doctor_cmd",
                   "Walk the troubleshooting guide for ENV: each problem found, with its fix."),
    }

    def list_commands(self, ctx):
        return sorted({*super().list_commands(ctx), *self.LAZY})

    def get_command(self, ctx, name):
        if name in self.LAZY and name not in self.commands:
            import importlib

            module, attr, _ = self.LAZY[name]
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return super().get_command(ctx, name)

    def format_commands(self, ctx, formatter):
        """The command list from LAZY's one-liners: `--help` imports no subcommand module."""
        rows = [(name, self.LAZY[name][2] if name in self.LAZY else
                 self.commands[name].get_short_help_str()) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KestraOpsError as err:
            click.echo(f"error: {err}", err=True)
            if err.hint:
                click.echo(f"hint: {err.hint}", err=True)
            ctx.exit(err.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:  # `kestra-ops values render | head`: the reader left, not a bug
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(EXIT_FAILED)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except Exception as err:  # noqa: BLE001 - the one place that turns bugs into a line
            state = ctx.find_object(State)
            if state is not None and state.debug:
                raise
            click.echo(f"internal error: {type(err).__name__}: {err} (rerun with --debug for the "
                       "traceback)", err=True)
            ctx.exit(EXIT_FAILED)


@click.group(cls=KestraOpsGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="kestra-ops")
@click.option("--config", "config_path", metavar="PATH", envvar="KESTRA_OPS_CONFIG",
              help="kestra-ops.yaml to use (default: found in the working directory or above; "
                   "without one, the embedded dev/staging/production defaults).")
@click.option("--debug", is_flag=True, help="Show tracebacks for internal errors.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, debug: bool) -> None:
    """Deploy, check, patch, back up and roll back a Kestra install on Kubernetes.

    Start with `kestra-ops plan --env dev`: it renders the environment's layered values,
    validates them and lints the chart, all offline.
    """
    ctx.obj = State(config_path, debug)


def main() -> None:
    try:
        cli.main(prog_name="kestra-ops")
    except KeyboardInterrupt:  # raised outside a command (during parsing)
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
