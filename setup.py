"""The build hook that makes the wheel self-contained (everything else is in pyproject.toml).

The chart (``charts/kestra``, with ``values.schema.json``) and the values layers
(``values/*.yaml``) have one copy, in the repository, where helm, the tests, the benchmarks and
the runbooks use them. ``build_py`` copies them into the wheel as package data under
``kestra_ops/_bundle/`` (regular files, never a symlink), where ``kestra_ops.packaged`` finds them
through ``importlib.resources``. The sdist carries both folders (``MANIFEST.in``), so a wheel
built from it is the same. An editable install copies nothing: the checkout is the packaged copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
BUNDLE = ("kestra_ops", "_bundle")


def bundle_files(root: Path = HERE) -> list[tuple[Path, Path]]:
    """``(source, path inside _bundle)`` of every file that ships: the whole chart folder and
    the values layers. A missing chart or base layer stops the build (a wheel without them is
    the broken install this hook exists to prevent)."""
    chart, values = root / "charts" / "kestra", root / "values"
    for needed in (chart / "Chart.yaml", chart / "values.schema.json", values / "base.yaml"):
        if not needed.is_file():
            raise SystemExit(f"setup.py: {needed} is missing: the wheel would ship no "
                             "chart or values")
    files = [p for p in sorted(chart.rglob("*")) if p.is_file()]
    files += sorted(values.glob("*.yaml"))
    return [(p, p.relative_to(root)) for p in files]


class BuildPyWithBundle(build_py):
    """``build_py`` that also copies the chart and the values layers into the package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib).joinpath(*BUNDLE)
        shutil.rmtree(target, ignore_errors=True)  # a file removed since the last build goes
        for source, inside in bundle_files():
            dest = target / inside
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)  # the content, also of a symlink: a regular file

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        if getattr(self, "editable_mode", False):
            return super().get_outputs(include_bytecode)
        target = Path(self.build_lib).joinpath(*BUNDLE)
        return [*super().get_outputs(include_bytecode),
                *(str(target / inside) for _, inside in bundle_files())]


setup(cmdclass={"build_py": BuildPyWithBundle})
