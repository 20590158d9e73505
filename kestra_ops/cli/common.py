"""Options shared by several commands."""

from __future__ import annotations

import sys

import click

from kestra_ops.cli import State

pass_state = click.make_pass_decorator(State)


def env_option(required: bool = True):
    from kestra_ops.cli.completion import complete_env

    return click.option("--env", "-e", "env", envvar="KESTRA_OPS_ENV", required=required,
                        metavar="ENV", shell_complete=complete_env,
                        help="Environment from kestra-ops.yaml (dev, staging, "
                        "production by default). Env: KESTRA_OPS_ENV.")


# (setting, option names, help): the cluster a command talks to, as helm and kubectl name it
KUBE_OPTIONS = (
    ("context", ("--kube-context",), "CONTEXT",
     "Kube context to use (default: KESTRA_OPS_CONTEXT, the env's context in kestra-ops.yaml, "
     "else the kubeconfig's current context)."),
    ("kubeconfig", ("--kubeconfig",), "PATH",
     "Kubeconfig file (default: KESTRA_OPS_KUBECONFIG, the env's kubeconfig in "
     "kestra-ops.yaml, else KUBECONFIG, else ~/.kube/config)."),
    ("namespace", ("-n", "--namespace"), "NAMESPACE",
     "Namespace of the install (default: KESTRA_OPS_NAMESPACE, the env's namespace in "
     "kestra-ops.yaml, else hyperplane-kestra)."),
    ("release", ("--release",), "NAME",
     "Helm release name (default: KESTRA_OPS_RELEASE, the env's release in kestra-ops.yaml, "
     "else kestra)."),
)
RENDER_SETTINGS = ("namespace", "release")  # what rendering the chart needs (plan, chart lint)


def kube_options(settings: tuple[str, ...] | None = None, *,
                 namespace: tuple[str, ...] = ("-n", "--namespace")):
    """``--kube-context``, ``--kubeconfig``, ``-n/--namespace`` and ``--release`` (or only
    ``settings``), for every command that talks to the cluster. Each value given is handed to
    :meth:`State.environment` as a flag, so it wins over the KESTRA_OPS_* variable, the file
    and the default, and passes the file's rules there (a bad value: one line, exit 2). The
    command's function takes no argument for them. ``namespace``: the option's names where
    ``--namespace`` already means something else (flows: a Kestra namespace)."""
    def store(key: str):
        def callback(ctx, param, value):
            state = ctx.find_object(State)
            if value is not None and state is not None:  # (None: parsed only, never run)
                state.flags[key] = value
                state.flag_names[key] = "/".join(sorted(param.opts, key=len))
        return callback

    def decorate(fn):
        for key, opts, metavar, text in reversed(KUBE_OPTIONS):
            if settings is not None and key not in settings:
                continue
            names = namespace if key == "namespace" else opts
            fn = click.option(*names, f"kube_flag_{key}", metavar=metavar, expose_value=False,
                              callback=store(key), help=text)(fn)
        return fn
    return decorate


def output_option(*legacy: str, default: str = "text"):
    """``--output/-o``: every format of :mod:`kestra_ops.output` (a format added there is offered
    by every command). ``table`` is accepted for ``text``. (Positional names are ignored: they
    were each command's own list.)"""
    from kestra_ops.output import ALIASES, format_names

    names = format_names()
    return click.option("--output", "-o", "output", type=click.Choice([*names, *ALIASES]),
                        default=ALIASES.get(default, default), show_default=True,
                        callback=lambda ctx, param, value: ALIASES.get(value, value),
                        help=f"Output format: {', '.join(names)}.")


def emit(report, output: str, *, quiet: bool = False) -> None:
    """Print ``report`` in ``output`` format on stdout and exit with its exit code (also when
    the reader of stdout left before the end: ``| head -1``)."""
    from kestra_ops.output import render

    text = render(report, output, color=output == "text" and color(), quiet=quiet)
    if text:
        try:
            click.echo(text)  # (echo flushes: a reader that left shows here)
        except BrokenPipeError:  # `| head -1`: the reader left; the verdict is still the report's
            from kestra_ops.cli import reader_left

            if not reader_left():
                raise
    click.get_current_context().exit(report.exit_code)


def progress_for(output: str, quiet: bool):
    """Progress lines on stderr: only on a terminal (or with KESTRA_OPS_PROGRESS=1), never with
    --quiet or a machine format."""
    from kestra_ops.output import terminal
    from kestra_ops.output.progress import Progress

    return Progress(quiet=quiet or output != "text" or not terminal.progress_shown())


def quiet_option():
    return click.option("--quiet", "-q", is_flag=True,
                        help="Print only the result (no progress); implied when not a terminal.")


def check_timeout_option():
    """``--check-timeout``: how long the checklist after a release may take (release, scale,
    upgrade run and restore)."""
    return click.option("--check-timeout", default="5m", show_default=True,
                        callback=check_duration, metavar="DURATION",
                        help="How long the checklist may take to pass (check --wait).")


def color() -> bool:
    from kestra_ops.output.terminal import styled

    return styled(sys.stdout)


def kube_version_option():
    from kestra_ops.defaults import DEFAULT_KUBE_VERSION

    return click.option("--kube-version", default=DEFAULT_KUBE_VERSION, show_default=True,
                        callback=check_kube_version,
                        help="Kubernetes version whose API schemas the rendered manifests must "
                             "match (MAJOR.MINOR[.PATCH], one of the bundled schema sets).")


def check_kube_version(ctx, param, value):
    """Click callback: a Kubernetes version that helm parses and whose API schemas are bundled
    (kubernetes-validate's sets), refused before anything runs; the text is kept as given."""
    import re

    from kestra_ops.defaults import DEFAULT_KUBE_VERSION

    if value is None or value == DEFAULT_KUBE_VERSION:
        return value
    m = re.fullmatch(r"v?([0-9]{1,3})\.([0-9]{1,3})(?:\.[0-9]{1,6})?", value)
    from kubernetes_validate.utils import all_versions

    known = sorted({tuple(int(n) for n in v.split(".")[:2]) for v in all_versions()})
    span = f"{known[0][0]}.{known[0][1]} to {known[-1][0]}.{known[-1][1]}" if known else "none"
    if not m:
        raise click.BadParameter(f"{value!r} is not a Kubernetes version (MAJOR.MINOR[.PATCH], "
                                 f"e.g. {DEFAULT_KUBE_VERSION})")
    if (int(m[1]), int(m[2])) not in known:
        raise click.BadParameter(f"{value!r}: no Kubernetes API schemas for {m[1]}.{m[2]} "
                                 f"(bundled: {span})")
    return value


def helm_option():
    return click.option("--helm", "helm", envvar="KESTRA_OPS_HELM", metavar="PATH",
                        help="helm binary (default: PATH, then beside the interpreter). "
                             "Env: KESTRA_OPS_HELM.")


def check_duration(ctx, param, value):
    """Click callback: a duration (90s, 10m, 1h30m, PT5M; :mod:`kestra_ops.durations`), refused
    before anything runs; the text is kept (helm takes it as given)."""
    if value is None:
        return None
    from kestra_ops import durations
    from kestra_ops.errors import InvalidInput

    try:
        durations.parse(value)
    except InvalidInput as err:
        raise click.BadParameter(str(err)) from None
    return value


def duration_seconds(ctx, param, value):
    """Click callback: a duration in seconds, or None when not given."""
    if value is None:
        return None
    from kestra_ops import durations

    check_duration(ctx, param, value)
    return durations.parse(value)


def confirm(yes: bool, question: str, what: str) -> bool:
    """The one confirm policy of commands that change something: ``--yes`` goes ahead; without a
    terminal to answer on, refuse (:class:`InvalidInput`, exit 2: "refusing to WHAT without
    --yes"), nothing changed; else ask (default no; Ctrl-C is an interrupt, exit 130)."""
    if yes:
        return True
    if not sys.stdin.isatty():
        from kestra_ops.errors import InvalidInput

        raise InvalidInput(f"refusing to {what} without --yes (stdin is not a terminal); "
                           "nothing was changed")
    return ask(question)


def asker(yes: bool, what: str):
    """The confirmation of a command that shows lines before its question (a plan, a diff):
    ``--yes`` goes ahead; else the lines on stderr, then :func:`confirm` (no terminal: exit
    2, nothing changed)."""
    def ask(question: str, shown: list[str]) -> bool:
        if yes:
            return True
        for line in shown:
            click.echo(line, err=True)
        return confirm(False, question, what)

    return ask


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


def storage_insecure_option():
    """--insecure for commands that reach object storage only (its TLS, not Kestra's)."""
    return click.option("--insecure", is_flag=True,
                        help="Do not verify the TLS certificates of object storage (prints a "
                             "warning). Better: minio.ca_file / backup.ca_file in "
                             "kestra-ops.yaml name the CA that signs them.")


def storage_environment(state, name: str, insecure: bool):
    """The environment ``name``; with ``insecure``, object storage's certificates unchecked."""
    return state.environment(name, storage_insecure=True if insecure else None)


def insecure_warned(report, insecure: bool):
    """``report`` with the --insecure warning among its warnings (shown in every format)."""
    if insecure:
        from kestra_ops.storage_options import INSECURE_WARNING

        report.warnings.append(INSECURE_WARNING)
    return report


def confirm_diff(yes: bool, question: str, what: str):
    """The confirm callback of deploy/release: --yes passes; otherwise show the masked diff on
    stderr and ask (:func:`confirm`: no terminal -> exit 2, nothing changed)."""
    def ask_diff(diff) -> bool:
        if yes:
            return True
        click.echo(diff.text(), err=True)
        click.echo(f"changes: {diff.summary()}", err=True)
        drift = getattr(diff, "drift", [])
        if drift:
            question_ = (f"{question.rstrip('?')}, reverting the {len(drift)} field(s) changed "
                         "outside Helm?")
        else:
            question_ = question
        return confirm(False, question_, what)

    return ask_diff


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
