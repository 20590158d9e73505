"""release never writes a report that does not say what happened (issue 12, item 15): on an
unreachable cluster, and when Ctrl-C comes at once, the report (printed and stored) names the
step it stopped at, why, and that nothing was changed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers_checks import install  # noqa: F401 - fixture
from tests.helpers_net import unreachable_kubeconfig
from tests.integration.release_support import lock_free, release

ROOT = Path(__file__).resolve().parents[2]


def stored(install, data) -> dict:
    path = install.root / "backups" / "releases" / "dev" / data["started"] / "report.json"
    return json.loads(path.read_text())


def test_an_unreachable_cluster_is_named_with_the_step_it_stopped_at(install, monkeypatch,
                                                                     tmp_path):
    gone = unreachable_kubeconfig(tmp_path / "gone.yaml")
    monkeypatch.setenv("KESTRA_OPS_KUBECONFIG", gone)
    monkeypatch.setenv("KUBECONFIG", gone)
    result, data = release(install)
    assert result.exit_code == 1, result.output
    assert data["outcome"] == "failed" and data["stopped_at"] == "take the deploy lock"
    assert data["message"].startswith("release dev: failed at take the deploy lock: cannot "
                                      "reach the Kubernetes API"), data["message"]
    assert data["message"].endswith("; nothing was changed")
    assert stored(install, data)["message"] == data["message"]
    assert stored(install, data)["stopped_at"] == "take the deploy lock"
    text = install.run("--yes", command="release")
    assert "stopped at: take the deploy lock" in text.output
    assert not install.helm.calls("upgrade")


def test_ctrl_c_before_the_first_step(install, monkeypatch):
    """Ctrl-C while helm is being found (before the chart lint): a report all the same."""
    from kestra_ops import wiring

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(wiring, "helm", interrupted)
    result, data = release(install)
    assert result.exit_code == 130, result.output
    assert data["outcome"] == "interrupted" and data["stopped_at"] == "the start"
    assert data["message"] == "release dev: interrupted at the start; nothing was changed"
    assert stored(install, data)["stopped_at"] == "the start"
    assert lock_free(install)


def test_ctrl_c_between_the_lint_and_the_lock(install, monkeypatch):
    from kestra_ops import wiring

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(wiring, "kube", interrupted)
    result, data = release(install)
    assert result.exit_code == 130, result.output
    assert data["stopped_at"] == "after chart lint"
    assert data["message"] == ("release dev: interrupted after chart lint; nothing was "
                               "changed")
    assert lock_free(install) and not install.helm.calls("upgrade")


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2])
def test_a_real_ctrl_c_at_once(install, delay):
    """A real SIGINT as soon as the release says it started: exit 130, and the report printed
    and stored says where it stopped."""
    env = {k: v for k, v in os.environ.items()}
    env["KESTRA_OPS_NO_CACHE"] = "1"
    proc = subprocess.Popen([sys.executable, "-m", "kestra_ops", "--config",
                             str(install.config), "release", "--env", "dev", "--yes"],
                            cwd=install.root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stderr.readline()
    assert first.rstrip() == "release dev: release kestra in hyperplane-kestra (context fake)", \
        first
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err
    assert "stopped at: " in out, (out, err)
    assert out.rstrip().splitlines()[-1].startswith(
        "release dev: interrupted "), out
    [report] = (install.root / "backups" / "releases" / "dev").glob("*/report.json")
    data = json.loads(report.read_text())
    assert data["outcome"] == "interrupted" and data["stopped_at"], data
    assert data["message"].startswith("release dev: interrupted ")
