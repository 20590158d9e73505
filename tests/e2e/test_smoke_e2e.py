"""First install with ``deploy`` on the real control plane (the rest of the tier builds on it)."""

from tests.e2e.support import wait_until


def test_first_install_with_deploy(install):
    result = install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")
    assert "deployed revision 1" in result.stdout
    assert [r["status"] for r in install.history()] == ["deployed"]
    dep = install.deployment()
    assert dep["status"].get("readyReplicas") == 1
    assert install.lease() is None
