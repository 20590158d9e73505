"""The chart and values layers that ship inside the package: the defaults of a project without
its own ``charts/kestra`` or ``values/``.

The repository holds the one copy (``charts/kestra``, ``values/*.yaml``); the build copies it into
the wheel as ``kestra_ops/_bundle/`` (``setup.py``), found here through
:mod:`importlib.resources`. In a source checkout (an editable install) there is no ``_bundle``:
the checkout's own files are the packaged copy. ``importlib.resources`` is imported only when the
packaged copy is asked for, never on the way to a project's own files (the fast path of ``values
validate`` stays as it is).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from kestra_ops.errors import PackagedDataMissing

BUNDLE = "_bundle"  # kestra_ops/_bundle/{charts/kestra, values} in a wheel
CHART = Path("charts", "kestra")
VALUES = Path("values")
SOURCE = "packaged"  # the settings' source of a chart or values taken from here


def label() -> str:
    """How reports name the packaged copy: ``packaged (kestra-ops 0.1.0)``."""
    from kestra_ops import __version__

    return f"packaged (kestra-ops {__version__})"


@lru_cache(maxsize=1)
def root() -> Path:
    """The folder holding the packaged ``charts/kestra`` and ``values/``."""
    from importlib.resources import files

    bundle = files("kestra_ops").joinpath(BUNDLE)
    if isinstance(bundle, Path) and (bundle / CHART / "Chart.yaml").is_file():
        return bundle
    checkout = Path(__file__).resolve().parent.parent  # a source checkout: its own files
    if (checkout / CHART / "Chart.yaml").is_file() and (checkout / "pyproject.toml").is_file():
        return checkout
    raise PackagedDataMissing(
        "this kestra-ops install ships no chart and values (kestra_ops/_bundle is missing): "
        "reinstall it from a wheel or sdist built from the repository, or run it in a project "
        "with its own charts/kestra and values/")


def chart() -> Path:
    """The packaged chart (its ``values.schema.json`` is the packaged schema)."""
    return root() / CHART


def values_layers(env: str) -> tuple[Path, ...] | None:
    """The packaged layers of ``env`` (base, then the env's own), or None when the package has
    no layer for that environment (only dev, staging and production ship)."""
    folder = root() / VALUES
    own = folder / f"{env}.yaml"
    if env == "base" or not own.is_file():
        return None
    return folder / "base.yaml", own
