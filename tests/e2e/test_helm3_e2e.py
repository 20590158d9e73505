"""The same out-of-band ConfigMap change with Helm 3 (client-side, three-way merge): the deploy
shows it, never sends Helm 4's --force-conflicts (Helm 3 refuses unknown flags), and the
three-way merge reverts it. A Ctrl-C'd failing upgrade is rolled back the same way."""

from __future__ import annotations

import json

from tests.e2e.test_drift_e2e import grace, owners, patch


def test_helm3_config_patch_then_deploy(install, helm3):
    install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")
    assert install.history()[-1]["app_version"] and owners(install) == {"helm"}
    patch(install, "4m")
    assert grace(install) == "4m"
    result = install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket", "--output",
                            "json")
    data = json.loads(result.stdout)
    assert data["outcome"] == "deployed" and data["force_conflicts"] is False
    assert any("kestra-ops" in line for line in data["diff"]["drift"])
    assert grace(install) == "5m"
    assert [r["status"] for r in install.history()] == ["superseded", "deployed"]


def test_helm3_rollback_over_a_config_patch(install, helm3):
    install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")
    install.edit_overlay("workerThreads: 8", "workerThreads: 9")
    install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")
    patch(install, "4m", "--no-restart")
    install.run_ok("rollback", "--env", "dev", "--yes")
    assert grace(install) == "5m"
    assert [r["status"] for r in install.history()] == ["superseded", "superseded", "deployed"]
