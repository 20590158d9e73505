"""A recording stand-in for the ``helm`` executable, for tests without a cluster.

Installed into ``tmp_path`` as an executable named ``helm`` (``helm_standin_exe.py`` with a
shebang to the test interpreter; this module is the test side), it appends every argv as a JSON
line to ``$KESTRA_OPS_TEST_HELM_LOG`` and keeps the releases in ``$KESTRA_OPS_TEST_HELM_STATE``
(JSON), answering in helm's real shapes:

* ``version`` (BuildInfo line, ``--short``, ``--template``) for ``$KESTRA_OPS_TEST_HELM_VERSION``;
* ``upgrade [--install]``, ``rollback``, ``history``, ``status``, ``get values``, ``get manifest``
  with statuses deployed / superseded / failed / pending-* and helm's descriptions;
* Helm 3 refuses ``--rollback-on-failure`` and ``--wait=STRATEGY``; Helm 4 warns on ``--atomic``;
* ``template``, ``lint``, ``dependency``, ``show``, ``package`` run the real helm
  (``$KESTRA_OPS_TEST_HELM_REAL``); the manifest of an upgrade is the real ``helm template``.

Faults, in the state file (``HelmStandin.state.set_fault``) or ``$KESTRA_OPS_TEST_HELM_FAULT``
(``upgrade:fail:MESSAGE``, ``upgrade:hang:SECONDS``, ``rollback:fail``, ``rollback:hang``):
``fail`` exits 1 like helm (``Error: UPGRADE FAILED: ...``), recording the revision failed and, with
``--atomic``/``--rollback-on-failure``, rolling back as helm does; ``hang`` records the revision
``pending-*`` and sleeps (``seconds``, or until the file ``until`` exists): SIGINT/SIGTERM then
fail it with "context canceled" like helm, SIGKILL leaves it pending.

In tests: ``standin = helm_standin("v3.17.3")`` (fixture below) or ``install_helm_standin(...)``;
``standin.state.seed(["superseded", "deployed"])``, ``standin.state.set_fault("upgrade", "fail")``,
``standin.calls("rollback")``.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tests.fakes import helm_standin_exe as exe
from tests.fakes.helm_standin_exe import CLUSTER, FAULT, LOG, REAL, STATE, VERSION, record

__all__ = ["HelmStandin", "StandinState", "install_helm_standin", "helm_standin_fixture"]


class StandinState(exe.State):
    """The stand-in's release store, with helpers to seed revisions and set faults."""

    def records(self, release="kestra", namespace="hyperplane-kestra") -> list[dict]:
        return self.load()["releases"].get(f"{namespace}/{release}", [])

    def statuses(self, release="kestra", namespace="hyperplane-kestra") -> list[tuple[int, str]]:
        return [(r["version"], r["info"]["status"]) for r in self.records(release, namespace)]

    def seed(self, statuses=("superseded", "deployed"), *, release="kestra",
             namespace="hyperplane-kestra", chart="kestra", chart_versions=None,
             app_version="1.3.0", values=None, manifest: str | None = None) -> list[dict]:
        """Revisions 1..N with the given statuses (and helm's descriptions for them); each
        stores ``manifest`` (default: a one-ConfigMap manifest naming its revision)."""
        with self.locked() as data:
            recs = data["releases"].setdefault(f"{namespace}/{release}", [])
            for status in statuses:
                n = len(recs) + 1
                version = (chart_versions or {}).get(n, f"0.{n}.0")
                desc = {"failed": f'Upgrade "{release}" failed: context deadline exceeded',
                        "pending-upgrade": "Preparing upgrade",
                        "pending-install": "Initial install underway"}.get(
                    status, "Install complete" if n == 1 else "Upgrade complete")
                recs.append(record(release, namespace, n, status, desc,
                                   {"name": chart, "version": version, "appVersion": app_version,
                                    "apiVersion": "v2"},
                                   {"revision": n, **(values or {})},
                                   _manifest(n) if manifest is None else manifest))
            return recs

    def set_fault(self, command: str, mode: str, message: str | None = None, *,
                  seconds: float | None = None, until: str | None = None,
                  times: int | None = None) -> None:
        """``set_fault("upgrade", "fail", "boom")``; ``times`` limits how often it fires."""
        with self.locked() as data:
            data["faults"][command] = {"mode": mode, "message": message, "seconds": seconds,
                                       "until": until, "times": times}

    def clear_faults(self) -> None:
        with self.locked() as data:
            data["faults"] = {}


def _manifest(n: int) -> str:
    return ("---\n# Source: kestra/templates/configmap.yaml\napiVersion: v1\nkind: ConfigMap\n"
            f"metadata:\n  name: kestra-config\ndata:\n  revision: \"{n}\"\n")


class HelmStandin:
    """What a test holds: ``.path`` (the executable), ``.calls()``, ``.state``."""

    def __init__(self, folder: Path, version: str, real: str | None):
        self.folder = folder
        self.path = folder / "helm"
        self.log = folder / "helm-calls.jsonl"
        self.state = StandinState(folder / "helm-state.json")
        self.version, self.real = version, real

    def env(self) -> dict[str, str]:
        env = {LOG: str(self.log), STATE: str(self.state.path), VERSION: self.version,
               "KESTRA_OPS_HELM": str(self.path),
               CLUSTER: str(Path(exe.__file__).with_name("helm_standin_cluster.py"))}
        return {**env, REAL: self.real} if self.real else env

    def calls(self, command: str | None = None) -> list[list[str]]:
        """Every argv so far, or those whose first word(s) are ``command`` ("get values")."""
        if not self.log.is_file():
            return []
        calls = [json.loads(line) for line in self.log.read_text().splitlines() if line]
        if command is None:
            return calls
        want = command.split()
        return [c for c in calls if [a for a in c if not a.startswith("-")][:len(want)] == want]


def install_helm_standin(tmp_path, monkeypatch, version: str = "v4.1.4", *,
                         real_helm: str | None = None) -> HelmStandin:
    """Install the stand-in under ``tmp_path`` and point ``KESTRA_OPS_HELM`` at it."""
    from kestra_ops.adapters import helm_cli

    if real_helm is None:
        try:
            real_helm = helm_cli.find_helm()
        except Exception:  # noqa: BLE001 - delegated commands then say there is no real helm
            real_helm = None
        if real_helm and Path(real_helm).parent.name == "helm-standin":  # installed twice
            real_helm = os.environ.get(REAL)
    folder = Path(tmp_path) / "helm-standin"
    folder.mkdir(exist_ok=True)
    standin = HelmStandin(folder, version, real_helm)
    # kestra-ops starts helm with an allowlisted environment (no KESTRA_OPS_*): the launcher
    # carries the stand-in's own settings, and runs helm_standin_exe.py
    settings = {k: v for k, v in standin.env().items() if k != "KESTRA_OPS_HELM"}
    standin.path.write_text(f"#!{sys.executable}\nimport os, runpy\n"
                            f"for k, v in {settings!r}.items():\n    os.environ.setdefault(k, v)\n"
                            f"runpy.run_path({exe.__file__!r}, run_name='__main__')\n")
    standin.path.chmod(0o755)
    for key, value in standin.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv(FAULT, raising=False)
    helm_cli.helm_version.cache_clear()
    return standin


def helm_standin_fixture():
    """The ``helm_standin`` fixture: a factory ``helm_standin(version="v4.1.4")``. In a conftest:
    ``helm_standin = helm_standin_fixture()``."""
    import pytest

    @pytest.fixture
    def helm_standin(tmp_path, monkeypatch):
        def make(version: str = "v4.1.4", *, real_helm: str | None = None) -> HelmStandin:
            return install_helm_standin(tmp_path, monkeypatch, version, real_helm=real_helm)
        return make

    return helm_standin
