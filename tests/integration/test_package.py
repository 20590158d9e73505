"""The package is self-contained (issue 13, item 1): the sdist carries the tests, the chart and
the values; the wheel built from that sdist ships the chart and the values layers as package
data (regular files, the repository's bytes); installed into a fresh virtualenv, from an empty
folder, ``kestra-ops plan --env dev`` and ``kestra-ops values validate FILE`` work.

Built offline (``python -m build --no-isolation``: setuptools and build come from the test
extra). The fresh virtualenv gets the wheel alone (``--no-deps``); its dependencies are the ones
of this interpreter, reached through a ``.pth`` file (installing them again would take a minute
and the network): the package under test is the wheel's, never this checkout (checked).
"""

from __future__ import annotations

import email.parser
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from kestra_ops import __version__

ROOT = Path(__file__).resolve().parents[2]
HELM = shutil.which("helm") or str(Path(sys.executable).parent / "helm")
NAME = f"kestra_ops-{__version__}"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(HELM).exists(), reason="helm is not installed (scripts/setup "
                       "installs it)"),
]
# what a source tree holds besides its tracked files (caches, builds, the setup's virtualenv)
UNTRACKED = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__",
                                   ".pytest_cache", "_bundle", "backups", "rendered", ".tools")


def _run(cmd: list, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False,
                          timeout=120, **kwargs)
    assert proc.returncode == 0, f"{cmd}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """``python -m build``'s default: the sdist, then the wheel built from the unpacked sdist
    (so a file the sdist lacks is missing from the wheel too)."""
    work = tmp_path_factory.mktemp("package")
    shutil.copytree(ROOT, work / "src", ignore=UNTRACKED)
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", work / "dist",
          work / "src"])
    return work / "dist"


def _bundled() -> dict[str, bytes]:
    """Every file the wheel must ship under kestra_ops/_bundle, with the repository's bytes."""
    files = [p for p in (ROOT / "charts" / "kestra").rglob("*") if p.is_file()]
    files += list((ROOT / "values").glob("*.yaml"))
    return {f"kestra_ops/_bundle/{p.relative_to(ROOT).as_posix()}": p.read_bytes() for p in files}


def test_the_sdist_carries_the_tests_the_chart_and_the_values(dist):
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        members = {m.name.removeprefix(f"{NAME}/"): m for m in tar.getmembers()}
    tests = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").rglob("*")
             if p.is_file() and "__pycache__" not in p.parts}
    assert tests and tests <= set(members), sorted(tests - set(members))[:5]
    assert "tests/integration/test_package.py" in members
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "constraints.txt",
                 "charts/kestra/Chart.yaml", "charts/kestra/values.schema.json",
                 "values/base.yaml", "values/dev.yaml", "kestra_ops/packaged.py",
                 "kestra_ops/upgrades/catalogue.yaml"):
        assert name in members and members[name].isfile(), name
    assert not [n for n in members if "_bundle" in n or "__pycache__" in n]
    assert not [n for n, m in members.items() if m.issym() or m.islnk()]


def test_the_wheel_ships_the_chart_and_values_as_regular_files(dist):
    (wheel,) = dist.glob("*.whl")
    assert wheel.name == f"{NAME}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as whl:
        infos = {i.filename: i for i in whl.infolist()}
        shipped = {n: whl.read(n) for n in infos if n.startswith("kestra_ops/_bundle/")}
        meta = email.parser.Parser().parsestr(whl.read(f"{NAME}.dist-info/METADATA").decode())
        record = whl.read(f"{NAME}.dist-info/RECORD").decode()
        entry_points = whl.read(f"{NAME}.dist-info/entry_points.txt").decode()
    assert shipped == _bundled()  # every file, byte for byte, and nothing else
    assert "kestra_ops/_bundle/charts/kestra/values.schema.json" in shipped
    # the version catalogue is package data (values validate's version rule reads it)
    assert "kestra_ops/upgrades/catalogue.yaml" in infos
    for name, info in infos.items():  # no symlink (a zip entry's mode is in external_attr)
        assert not stat.S_ISLNK(info.external_attr >> 16), name
    assert all(f"{name}," in record for name in shipped)
    assert not [n for n in infos if n.startswith(("tests/", "charts/", "values/"))]
    # the metadata twine check looks at (twine is not installable offline here)
    assert tuple(map(int, meta["Metadata-Version"].split("."))) >= (2, 4)  # License-Expression
    assert meta["Name"] == "kestra-ops" and meta["Version"] == __version__
    assert meta["Requires-Python"] == ">=3.11"
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().strip() == (ROOT / "README.md").read_text().strip()
    assert any(r.startswith("click") for r in meta.get_all("Requires-Dist"))
    assert "kestra-ops = kestra_ops.entry:main" in entry_points
    if shutil.which("twine"):
        _run(["twine", "check", "--strict", *dist.iterdir()])


@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory) -> dict:
    """A fresh virtualenv holding the wheel; its dependencies are this interpreter's."""
    work = tmp_path_factory.mktemp("installed")
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    (wheel,) = dist.glob("*.whl")
    _run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install",
          "--quiet", "--no-deps", "--no-index", wheel])
    site = Path(_run([venv / "bin" / "python", "-c",
                      "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
                     ).stdout.strip())
    deps = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
    (site / "zz-test-dependencies.pth").write_text("".join(f"{d}\n" for d in sorted(deps)))
    (work / "bin").mkdir()
    (work / "bin" / "helm").symlink_to(HELM)
    (work / "empty").mkdir()
    env = {"PATH": f"{venv / 'bin'}:{work / 'bin'}:/usr/bin:/bin", "HOME": str(work / "home"),
           "LANG": "C.UTF-8", "KESTRA_OPS_NO_CACHE": "1"}
    return {"venv": venv, "empty": work / "empty", "env": env, "work": work}


def _kestra_ops(installed: dict, *args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(installed["venv"] / "bin" / "kestra-ops"), *map(str, args)],
                          capture_output=True, text=True, check=False, timeout=120,
                          cwd=cwd or installed["empty"], env=installed["env"])


def test_the_installed_package_is_the_wheel_not_this_checkout(installed):
    proc = _run([installed["venv"] / "bin" / "python", "-c",
                 "import kestra_ops, sys; print(kestra_ops.__file__)"],
                cwd=installed["empty"], env=installed["env"])
    assert Path(proc.stdout.strip()).is_relative_to(installed["venv"])


def test_plan_from_an_empty_folder_uses_the_packaged_chart_and_values(installed):
    proc = _kestra_ops(installed, "plan", "--env", "dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"  chart: packaged (kestra-ops {__version__})\n" in proc.stdout
    assert f"  values: packaged (kestra-ops {__version__})\n" in proc.stdout
    assert proc.stdout.rstrip().endswith("plan dev: ok")
    proc = _kestra_ops(installed, "plan", "--env", "production", "--output", "json")
    import json

    data = json.loads(proc.stdout)
    assert proc.returncode == 0 and data["ok"] is True, proc.stdout + proc.stderr
    assert data["chart"]["source"] == data["values"]["source"] == "packaged"
    assert data["packaged_version"] == __version__
    chart = Path(data["chart"]["path"])
    assert chart.is_relative_to(installed["venv"]) and (chart / "values.schema.json").is_file()
    assert [Path(p).name for p in data["values"]["layers"]] == ["base.yaml", "production.yaml"]
    assert list(installed["empty"].iterdir()) == []  # plan wrote nothing where it ran


def test_values_validate_from_an_empty_folder_applies_the_packaged_schema(installed):
    files = installed["work"] / "files"
    files.mkdir()
    good, bad = files / "values.yaml", files / "bad.yaml"
    good.write_text((ROOT / "values" / "base.yaml").read_text())
    bad.write_text((ROOT / "values" / "base.yaml").read_text() + "notAChartKey: 1\n")
    proc = _kestra_ops(installed, "values", "validate", good)
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stdout + proc.stderr
    proc = _kestra_ops(installed, "values", "validate", bad)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "schema/unknown-key" in proc.stdout and "notAChartKey" in proc.stdout


def test_a_project_s_own_chart_and_values_override_the_packaged_ones(installed, dist):
    project = dist.parent / "src"  # the source tree the sdist was built from
    proc = _kestra_ops(installed, "plan", "--env", "dev", cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "  chart: ./charts/kestra\n" in proc.stdout
    assert "  values: ./values/base.yaml + ./values/dev.yaml\n" in proc.stdout


def test_init_then_plan_and_validate_from_the_installed_wheel(installed):
    """Issue 13's first 'done when': in a fresh venv from the wheel, from an empty folder,
    `kestra-ops init demo && cd demo && kestra-ops plan --env dev` passes, and
    `kestra-ops values validate values/production.yaml` works."""
    start = installed["work"] / "start"
    start.mkdir()
    proc = _kestra_ops(installed, "init", "demo", cwd=start)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    demo = start / "demo"
    proc = _kestra_ops(installed, "plan", "--env", "dev", cwd=demo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("plan dev: ok")
    assert f"  chart: packaged (kestra-ops {__version__})\n" in proc.stdout
    assert "  values: ./values/base.yaml + ./values/dev.yaml\n" in proc.stdout
    proc = _kestra_ops(installed, "values", "validate", "values/production.yaml", cwd=demo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
