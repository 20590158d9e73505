"""The ``kestra-ops`` command line: parse, call the library, render. No logic lives here.

Exit codes: 0 success; 1 a check or operation failed; 2 invalid input or usage;
3 changes found (commands with --detailed-exitcode); 130 interrupted.

The edge, once for every command: a typed error is one line and its exit code; Ctrl-C is
"interrupted", exit 130, and once the command is over (its result printed, or the first Ctrl-C
handled) a further Ctrl-C ends the process at once with 130 (no traceback from threads still
being joined, never a death by SIGINT); a reader that left (``| head -1``: EPIPE on stdout) is
not a failure: exit 0, or the exit code of the report being printed.
"""

from __future__ import annotations

import errno
import os
import signal
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
        self.flags: dict[str, str] = {}  # settings given by the kube options (cli.common)
        self.flag_names: dict[str, str] = {}  # ...and the option that gave each

    @property
    def config(self):
        if self._config is None:
            from kestra_ops.settings import load_config

            self._config = load_config(self.config_path)
        return self._config

    def environment(self, name: str, **flags):
        """The environment ``name`` with the command's flags: the kube options
        (:func:`kestra_ops.cli.common.kube_options`) and ``flags`` (None: not given)."""
        given = {**self.flags, **{k: v for k, v in flags.items() if v is not None}}
        return self.config.environment(name, flags=given, flag_names=self.flag_names)


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
                  "The environment's buckets on the shared MinIO (or any S3 store): setup, "
                  "check, policy."),
        "deploy": ("kestra_ops.cli.deploy", "deploy_cmd",
                   "Deploy ENV: validate, preflight, diff, then helm upgrade --install --wait."),
        "release": ("kestra_ops.cli.release", "release_cmd",
                    "Release ENV: validate, diff, back up, deploy, check, roll back on failure, "
                    "explain."),
        "upgrade": ("kestra_ops.cli.upgrade", "upgrade",
                    "Kestra version upgrades along the version catalogue"),
        "scale": ("kestra_ops.cli.scale", "scale_cmd",
                  "Scale ENV between standalone and distributed mode, or its workers: a "
                  "guarded release."),
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
                   "Backup sets in the env's backup bucket: database, flows and config; "
                   "verify, restore, drill."),
        "doctor": ("kestra_ops.cli.doctor", "doctor_cmd",
                   "Walk the troubleshooting guide for ENV: each problem found, with its fix."),
        "init": ("kestra_ops.cli.init", "init_cmd",
                 "Start a deployment repository in DIRECTORY (default: here)."),
        "completion": ("kestra_ops.cli.completion", "completion_cmd",
                       "Print the completion script for SHELL (bash, zsh or fish)."),
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

    def make_context(self, *args, **kwargs):
        try:  # `kestra-ops --help | head -1`: the top-level help and version are written here
            return super().make_context(*args, **kwargs)
        except BrokenPipeError:
            if not reader_left():
                raise
            raise click.exceptions.Exit(0) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KestraOpsError as err:
            say(f"error: {err}")
            if err.hint:
                say(f"hint: {err.hint}")
            ctx.exit(err.exit_code)
        except KeyboardInterrupt:
            _Edge.finishing = True  # the command is over: a second Ctrl-C ends it at once
            say("interrupted")
            ctx.exit(EXIT_INTERRUPTED)
        except BrokenPipeError as err:  # `kestra-ops values render | head`: the reader left
            if reader_left():
                ctx.exit(0)
            self._internal(ctx, err)  # a pipe to a child process (pg_restore...): a failure
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except Exception as err:  # noqa: BLE001 - the one place that turns bugs into a line
            if _after_interrupt(err):  # e.g. a lock left half-released by a second Ctrl-C
                _Edge.finishing = True
                say("interrupted")
                ctx.exit(EXIT_INTERRUPTED)
            self._internal(ctx, err)

    @staticmethod
    def _internal(ctx: click.Context, err: Exception) -> None:
        state = ctx.find_object(State)
        if state is not None and state.debug:
            raise err
        say(f"internal error: {type(err).__name__}: {err} (rerun with --debug for the "
            "traceback)")
        ctx.exit(EXIT_FAILED)


@click.group(cls=KestraOpsGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="kestra-ops")
@click.option("--config", "config_path", metavar="PATH", envvar="KESTRA_OPS_CONFIG",
              help="kestra-ops.yaml to use (default: found in the working directory or above; "
                   "without one, the embedded dev/staging/production defaults).")
@click.option("--debug", is_flag=True, help="Show tracebacks for internal errors.")
@click.option("--no-color", is_flag=True,
              help="Plain text: no colour, no live progress line (also NO_COLOR, TERM=dumb).")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, debug: bool, no_color: bool) -> None:
    """Deploy, check, patch, back up and roll back a Kestra install on Kubernetes.

    Start with `kestra-ops plan --env dev`: it renders the environment's layered values,
    validates them and lints the chart, all offline.
    """
    if no_color:
        from kestra_ops.output import terminal

        terminal.disable()
    ctx.obj = State(config_path, debug)


def _after_interrupt(err: BaseException) -> bool:
    """``err`` was raised while a Ctrl-C was being handled (a KeyboardInterrupt in its context
    chain): the consequence of the interrupt, not a bug."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


def say(line: str) -> None:
    """One line on stderr; a stderr nobody reads any more (``2>&1 | head``) changes nothing
    (the exit code stays the command's)."""
    try:
        click.echo(line, err=True)
    except BrokenPipeError:
        reader_left()


def reader_left() -> bool:
    """After an EPIPE: True when stdout is a pipe whose reader is gone (the result's reader
    left: not a failure). Stdout and stderr, when gone, are pointed at /dev/null, so what is
    still buffered is dropped quietly. False otherwise: the broken pipe was another one (a
    child process's, or stderr alone while the command still had work to do), a failure."""
    gone = {fd: _peer_gone(fd) for fd in (1, 2)}
    for stream, fd in ((sys.stdout, 1), (sys.stderr, 2)):
        if gone[fd]:
            _to_devnull(stream, fd)
    return gone[1]


def _peer_gone(fd: int) -> bool:
    import select

    try:
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def _to_devnull(stream, fd: int) -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    except OSError:
        pass


class _Edge:
    finishing = False  # the command is over: a Ctrl-C now ends the process at once


def _on_sigint(signum, frame) -> None:
    """Python's own behaviour (KeyboardInterrupt) while the command runs, so workflows stop
    cleanly and say where; once it is over, exit 130 at once (threads still being joined at
    exit, the report already printed)."""
    if _Edge.finishing:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001 - a reentrant or broken flush: exit anyway
                pass
        os._exit(EXIT_INTERRUPTED)
    raise KeyboardInterrupt


def _run() -> int:
    """The command's exit code (click's own ``Abort``, ``UsageError`` and ``Exit`` handled here,
    so that a Ctrl-C is 130 wherever it lands, never click's "Aborted!", exit 1)."""
    try:
        rv = cli.main(prog_name="kestra-ops", standalone_mode=False)
    except click.exceptions.Abort as err:
        if isinstance(err.__cause__ or err.__context__, KeyboardInterrupt):
            _Edge.finishing = True
            say("interrupted")
            return EXIT_INTERRUPTED
        say("Aborted!")
        return EXIT_FAILED
    except click.ClickException as err:
        try:
            err.show()
        except BrokenPipeError:
            reader_left()
        return err.exit_code
    except KeyboardInterrupt:  # raised outside a command (during parsing)
        _Edge.finishing = True
        say("interrupted")
        return EXIT_INTERRUPTED
    return rv if isinstance(rv, int) else 0


def _flush() -> str | None:
    """Flush stdout and stderr now, so the interpreter's own flush at exit cannot fail (it
    would print "Exception ignored" and exit 120): a stream that cannot be written is pointed at
    /dev/null. Returns why stdout could not be written (a full disk, an I/O error), or None
    (written, or its reader left: ``| head``, not a failure)."""
    lost = None
    for stream, fd in ((sys.stdout, 1), (sys.stderr, 2)):
        if stream is None:  # started with the descriptor closed (`>&-`)
            lost = lost or ("stdout is closed" if fd == 1 else None)
            continue
        try:
            stream.flush()
        except OSError as err:
            if fd == 1 and err.errno not in (errno.EPIPE, errno.EINVAL) and not _peer_gone(fd):
                lost = err.strerror or str(err)
            _to_devnull(stream, fd)
            try:
                stream.flush()
            except OSError:
                pass
    return lost


def main() -> None:
    try:
        signal.signal(signal.SIGINT, _on_sigint)
    except (ValueError, OSError):  # not the main thread of the main interpreter
        pass
    else:
        import atexit

        # registered first, so it runs last: the threads are joined by then, and the rest of
        # the interpreter's teardown restores SIGINT's default action (death by signal, -2)
        atexit.register(signal.signal, signal.SIGINT, signal.SIG_IGN)
    try:
        try:
            code = _run()
        except KeyboardInterrupt:  # a second Ctrl-C while the first was being reported
            _Edge.finishing = True
            code = EXIT_INTERRUPTED
        _Edge.finishing = True
        lost = _flush()
        if lost is not None and code == 0:  # the result never got out: not a success
            say(f"error: cannot write the result to stdout: {lost}")
            code = EXIT_FAILED
        if code == EXIT_INTERRUPTED:
            _leave_interrupted()
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    sys.exit(code)


THREAD_GRACE = 5.0  # seconds an interrupted command's leftover threads get before the exit


def _leave_interrupted() -> None:
    """Exit 130 without waiting for ever on threads the interrupt left behind (a worker stuck
    on a lock a KeyboardInterrupt left held, a network call without a deadline): each gets
    what is left of :data:`THREAD_GRACE`; the workflow already gave its cleanups their time."""
    import threading
    import time

    deadline = time.monotonic() + THREAD_GRACE
    for thread in threading.enumerate():
        if thread is threading.main_thread() or thread.daemon:
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            break
        thread.join(left)
    _flush()
    os._exit(EXIT_INTERRUPTED)
