"""Output: one renderer per format, each a module of :mod:`kestra_ops.output.formats` exposing
``render(report, *, color=False, quiet=False) -> str`` for any
:class:`kestra_ops.results.Report`. The formats are the modules found there (``formats()`` lists
them without importing any: :func:`format_names`), so adding a format is adding its module, and every reporting command
offers it through the shared ``--output`` option. :data:`MARKS` is the one table of how a status
reads in text (reports and progress lines alike)."""

from __future__ import annotations

MARKS = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "skip": "SKIP",
         "interrupted": "INTERRUPTED"}
ALIASES = {"table": "text"}  # the checklist's and history's earlier name of the text form


def format_names() -> tuple[str, ...]:
    """The format names, text first (module names under kestra_ops/output/formats)."""
    import os

    folder = os.path.join(os.path.dirname(__file__), "formats")
    names = {name[:-3] for name in os.listdir(folder)
             if name.endswith(".py") and not name.startswith("_")}
    return tuple(sorted(names, key=lambda n: (n != "text", n != "json", n)))


def render(report, fmt: str, *, color: bool = False, quiet: bool = False) -> str:
    """``report`` in format ``fmt`` (an alias such as ``table`` is accepted)."""
    import importlib

    fmt = ALIASES.get(fmt, fmt)
    if fmt not in format_names():
        from kestra_ops.errors import InvalidInput

        raise InvalidInput(f"unknown output format {fmt!r} (known: {', '.join(format_names())})")
    module = importlib.import_module(f"kestra_ops.output.formats.{fmt}")
    return module.render(report, color=color, quiet=quiet)
