"""Options shared by several commands."""

from __future__ import annotations

import sys

import click

from kestra_ops.cli import State

pass_state = click.make_pass_decorator(State)


def env_option(required: bool = True):
    return click.option("--env", "-e", "env", envvar="KESTRA_OPS_ENV", required=required,
                        metavar="ENV", help="Environment from kestra-ops.yaml (dev, staging, "
                        "production by default). Env: KESTRA_OPS_ENV.")


def output_option(*formats: str, default: str = "text"):
    return click.option("--output", "-o", "output", type=click.Choice(formats), default=default,
                        show_default=True, help="Output format.")


def quiet_option():
    return click.option("--quiet", "-q", is_flag=True,
                        help="Print only the result (no progress); implied when not a terminal.")


def color() -> bool:
    return sys.stdout.isatty()


def kube_version_option():
    from kestra_ops.defaults import DEFAULT_KUBE_VERSION

    return click.option("--kube-version", default=DEFAULT_KUBE_VERSION, show_default=True,
                        help="Kubernetes version whose API schemas the rendered manifests must "
                             "match.")


def helm_option():
    return click.option("--helm", "helm", envvar="KESTRA_OPS_HELM", metavar="PATH",
                        help="helm binary (default: PATH, then beside the interpreter). "
                             "Env: KESTRA_OPS_HELM.")


def check_duration(ctx, param, value):
    """Click callback: a helm-style duration (90s, 10m, 1h), refused before anything runs."""
    from kestra_ops.adapters.helm import parse_duration
    from kestra_ops.errors import InvalidInput

    try:
        parse_duration(value)
    except InvalidInput as err:
        raise click.BadParameter(str(err)) from None
    return value


def duration_seconds(ctx, param, value):
    """Click callback: a duration (90s, 10m, 1h) in seconds, or None when not given."""
    if value is None:
        return None
    check_duration(ctx, param, value)
    from kestra_ops.adapters.helm import parse_duration

    return parse_duration(value)


def kestra_options(tls_of: str = "Kestra"):
    """--kestra-url and --insecure, for commands that talk to Kestra's API."""
    def decorate(fn):
        fn = click.option("--insecure", is_flag=True,
                          help=f"Do not verify TLS certificates of {tls_of} (prints a "
                               "warning).")(fn)
        return click.option(
            "--kestra-url", metavar="URL",
            help="Kestra's URL (default: KESTRA_OPS_KESTRA_URL, the environment's kestra_url, "
                 "else the Kubernetes API's service proxy). Credentials: "
                 "KESTRA_OPS_BASIC_AUTH_USERNAME / _PASSWORD, else the env's basic-auth "
                 "Secret.")(fn)
    return decorate


def confirm_diff(yes: bool, question: str, refusal: str):
    """The confirm callback of deploy/release: --yes passes; otherwise show the masked diff on
    stderr and ask on a terminal; without one, refuse (nothing changes)."""
    def confirm(diff) -> bool:
        if yes:
            return True
        click.echo(diff.text(), err=True)
        click.echo(f"changes: {diff.summary()}", err=True)
        if not sys.stdin.isatty():
            click.echo(f"not a terminal and no --yes: {refusal}", err=True)
            return False
        drift = getattr(diff, "drift", [])
        if drift:
            return ask(f"{question.rstrip('?')}, reverting the {len(drift)} field(s) changed "
                       "outside Helm?")
        return ask(question)

    return confirm


def ask(question: str) -> bool:
    """``click.confirm`` on stderr, default no. Ctrl-C at the prompt stays a KeyboardInterrupt
    (exit 130, and a workflow can say where it stopped: click would make it "Aborted!", exit 1);
    the end of input answers no."""
    try:
        return click.confirm(question, default=False, err=True)
    except click.Abort as err:
        click.echo("", err=True)
        if isinstance(err.__context__, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        return False
