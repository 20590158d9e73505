"""The ``kestra-ops`` entry point.

``values validate FILE...`` is the hot path of CI jobs and pre-commit hooks (run on every
commit), and importing click is about a fifth of a cold run (``bench/cli_speed.py``). With
plain arguments (files, ``-e/--env``, ``--no-cache``, ``-o/--output``), stdout not a terminal (no
colour to decide) and no error, it runs here without click. Everything else goes to the click
CLI (:mod:`kestra_ops.cli`): any other command, option or argument, a terminal, and any error at
all (the CLI then does the work again and reports it the one way it reports everything). So the
fast path only ever prints a verdict reached without error, the same bytes and exit code as the
CLI (``tests/cli/test_entry.py`` compares both on the same inputs).
"""

from __future__ import annotations

import os
import sys

# the CLI's --output names (kestra_ops.output.format_names(), checked by the tests) and the
# values click reads as a flag from KESTRA_OPS_NO_CACHE (anything else: the CLI decides)
_FORMATS = frozenset(("text", "json", "yaml", "junit", "sarif", "github"))
_TRUE = frozenset(("1", "true", "t", "yes", "y", "on"))
_FALSE = frozenset(("", "0", "false", "f", "no", "n", "off"))


def main() -> None:
    try:
        code = values_validate(sys.argv[1:])
    except KeyboardInterrupt:  # between the verdict and its last byte written
        code = _interrupted()
    if code is None:
        from kestra_ops.cli import main as cli_main

        cli_main()
        return
    sys.exit(code)


def plain_validate_args(argv: list[str]) -> tuple[list[str], str | None, bool, str] | None:
    """``(files, env, no_cache, format)`` when ``argv`` is ``values validate`` with only files,
    ``-e/--env ENV``, ``--no-cache`` and ``-o/--output FORMAT``; None for anything else."""
    if argv[:2] != ["values", "validate"]:
        return None
    files: list[str] = []
    env, no_cache, fmt = None, False, "text"
    rest = argv[2:]
    i = 0
    while i < len(rest):
        arg = rest[i]
        value = rest[i + 1] if i + 1 < len(rest) else None
        if arg == "--no-cache":
            no_cache = True
        elif arg in ("-o", "--output") and value in _FORMATS:
            fmt, i = value, i + 1
        elif arg.startswith("--output=") and arg[len("--output="):] in _FORMATS:
            fmt = arg[len("--output="):]
        elif arg in ("-e", "--env") and value and not value.startswith("-"):
            env, i = value, i + 1
        elif not arg or arg.startswith("-"):
            return None  # any other option or form, "--", "-": the CLI's
        else:
            files.append(arg)
        i += 1
    if not files and env is None:
        return None  # the CLI says what is missing (or takes KESTRA_OPS_ENV)
    return files, env, no_cache, fmt


def _environment_ok() -> tuple[bool, str | None, str | None] | None:
    """(no cache, --config path, --env) as the CLI reads them from the environment; None when
    a value is one the CLI may read otherwise (it decides)."""
    no_cache = os.environ.get("KESTRA_OPS_NO_CACHE")
    if no_cache is not None and no_cache.strip().lower() not in _TRUE | _FALSE:
        return None
    config, env = os.environ.get("KESTRA_OPS_CONFIG"), os.environ.get("KESTRA_OPS_ENV")
    if config == "" or env == "":
        return None
    return (no_cache is not None and no_cache.strip().lower() in _TRUE), config, env


def values_validate(argv: list[str]) -> int | None:
    """Run ``kestra-ops values validate`` without click and return its exit code, or None (the
    CLI must run it): see the module doc."""
    args = plain_validate_args(argv)
    env = _environment_ok() if args else None
    if args is None or env is None:
        return None
    from kestra_ops.output.terminal import is_terminal

    out = sys.stdout
    if out is None or getattr(out, "closed", True) or is_terminal(out):
        return None  # no stdout, a closed one, or a terminal (colour): the CLI's to decide
    files, env_name, no_cache, fmt = args
    env_no_cache, config_path, env_default = env
    env_name = env_name or env_default
    _defer_stdlib(_DEFERRED)
    try:
        from pathlib import Path

        from kestra_ops.output import render
        from kestra_ops.settings import load_config
        from kestra_ops.workflows.values import validate_report

        config = load_config(config_path)
        # as the CLI: with FILEs, --env names the rules; without, the environment's layers
        environment = None if files else config.environment(env_name, flags={})
        report = validate_report(config, [Path(f) for f in files], env_name, None,
                                 environment=environment,
                                 use_cache=not (no_cache or env_no_cache))
        text = render(report, fmt, color=False, quiet=False)
    except KeyboardInterrupt:
        return _interrupted()
    except Exception:  # noqa: BLE001 - any error: the CLI runs the command again and reports it
        return None
    if text:
        try:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
        except BrokenPipeError:  # `| head -1`: the reader left; the verdict is still the report's
            _to_devnull()
        except OSError as err:  # a full disk, a device error: the report did not get out
            _to_devnull()
            _say(f"error: cannot write the report to stdout: {err.strerror or err}")
            return 1
    return report.exit_code


def _interrupted() -> int:
    """Ctrl-C: "interrupted", exit 130, as the CLI does; a second Ctrl-C is ignored."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _say("interrupted")
    return 130


# Standard-library modules this path imports without needing them for plain input: dataclasses
# imports inspect (~4 ms with ast, dis, tokenize) for classes without a docstring; PyYAML's
# constructor imports base64 for !!binary, which yamlfast leaves to ruamel. Until first used,
# each is a stand-in module that imports the real one on its first attribute (PEP 562
# ``__getattr__``; the way Mercurial's demandimport defers imports). An ``import`` of it
# meanwhile binds the stand-in, whose every attribute is the real module's.
_DEFERRED = ("inspect", "base64")


def _defer_stdlib(names: tuple[str, ...]) -> None:
    import types

    for name in names:
        if name in sys.modules:
            continue
        stand_in = types.ModuleType(name, f"{name}, imported on first use")

        def load(attr: str, name: str = name, stand_in: types.ModuleType = stand_in):
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]
            import importlib

            return getattr(importlib.import_module(name), attr)

        stand_in.__getattr__ = load
        sys.modules[name] = stand_in


def _say(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except OSError:
        pass


def _to_devnull() -> None:
    """Point stdout at /dev/null, so the interpreter's flush at exit finds no broken pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
