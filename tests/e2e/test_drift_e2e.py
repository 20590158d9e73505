"""Issue 10, item 1 on the real control plane with the real helm (v4, server-side apply):
``config patch`` without ``--persist`` used to break the next deploy (a field-manager conflict
that helm's own rollback hit too). Every write of kestra-ops is now field manager
``kestra-ops``; the deploy diff compares the render with the LIVE objects and names who changed
what; confirming takes the fields back (``--force-conflicts``). Item 10: a config patch works
while object storage is unreachable. Everything is asserted through the API and helm's own
record, not the tool's words."""

from __future__ import annotations

import json

from tests.e2e.support import ROOT

GRACE = ("kestra", "server", "termination-grace-period")


def grace(install) -> str:
    app = install.app_yml()
    for key in GRACE:
        app = app[key]
    return app


def owners(install, field: str = "application.yml") -> set[str]:
    """The field managers owning ``data.<field>`` of the live ConfigMap."""
    cm = install.configmap()
    return {m["manager"] for m in cm["metadata"].get("managedFields") or []
            if f"f:{field}" in (m.get("fieldsV1") or {}).get("f:data", {})}


def patch(install, value: str, *extra: str):
    return install.run_ok("config", "patch", "--env", "dev", "--set",
                          f"kestra.server.termination-grace-period={value}", "--yes", *extra)


def test_config_patch_then_deploy_takes_the_field_back(install):
    install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")
    assert grace(install) == "5m" and owners(install) == {"helm"}

    patch(install, "4m")
    assert grace(install) == "4m"
    assert owners(install) == {"kestra-ops"}  # never the client's default, OpenAPI-Generator
    deployment = install.deployment()
    assert "OpenAPI-Generator" not in install.managers(deployment)  # the rollout restart too

    dry = install.run("deploy", "--env", "dev", "--dry-run", "--diff", "--detailed-exitcode",
                      "--skip-bucket")
    assert dry.exit_code == 3, dry.stdout + dry.stderr
    assert "-        termination-grace-period: 4m" in dry.stdout
    assert "+        termination-grace-period: 5m" in dry.stdout
    assert ("ConfigMap/kestra-config .data.application.yml changed by kestra-ops (Update, "
            in dry.stdout)
    assert grace(install) == "4m" and len(install.history()) == 1  # a dry run changes nothing

    refused = install.run("deploy", "--env", "dev", "--skip-bucket")  # no terminal, no --yes
    assert refused.exit_code == 2 and "refusing to deploy to dev without --yes" in refused.stderr
    assert grace(install) == "4m" and len(install.history()) == 1

    done = install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket", "--output", "json")
    data = json.loads(done.stdout)
    assert data["outcome"] == "deployed" and data["force_conflicts"] is True
    assert data["diff"]["drift"] == [d for d in data["diff"]["drift"] if "kestra-ops" in d]
    assert [r["status"] for r in install.history()] == ["superseded", "deployed"]
    assert grace(install) == "5m" and owners(install) == {"helm"}
    assert install.lease() is None

    again = install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket",
                           "--detailed-exitcode")
    assert "no changes" in again.stdout and len(install.history()) == 2


def test_config_patch_persist_then_deploy_keeps_the_value(install):
    install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")
    patch(install, "3m", "--persist")
    assert grace(install) == "3m"
    assert "termination-grace-period: 3m" in install.overlay().read_text()

    dry = install.run("deploy", "--env", "dev", "--dry-run", "--detailed-exitcode",
                      "--skip-bucket", "--output", "json")
    data = json.loads(dry.stdout)
    # the values now render what is live: nothing to revert in application.yml, only helm's
    # record of it (and the Deployment's config checksum) changes
    configmap = [c for c in data["diff"]["changes"] if c["kind"] == "ConfigMap"]
    assert [c["scope"] for c in configmap] == ["manifest"], data["diff"]
    assert "--- release manifest ConfigMap/kestra-config" in configmap[0]["diff"]
    assert data["diff"]["drift"] == []
    install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")
    assert grace(install) == "3m"
    assert install.history()[-1]["status"] == "deployed"


def test_plain_helm_upgrade_on_the_patched_configmap_conflicts(install):
    """Why the above matters: what helm 4 itself does with a field kestra-ops wrote."""
    install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")
    patch(install, "4m", "--no-restart")
    values = [arg for name in ("base.yaml", "dev.yaml")
              for arg in ("-f", str(install.root / "values" / name))]
    upgrade = install.helm("upgrade", "kestra", str(ROOT / "charts" / "kestra"), *values,
                           check=False)
    assert upgrade.returncode != 0
    assert 'conflict with "kestra-ops"' in upgrade.stderr
    assert grace(install) == "4m"


def test_config_patch_while_object_storage_is_unreachable(install, monkeypatch):
    """Item 10: the patch that fixes a wrong MinIO endpoint must not need MinIO."""
    install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")
    monkeypatch.setenv("KESTRA_OPS_MINIO_ENDPOINT", "127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("KESTRA_OPS_MINIO_SECURE", "false")
    result = install.run_ok("config", "patch", "--env", "dev", "--set",
                            "kestra.jdbc.cleaner.retention=14d", "--yes", "--output", "json")
    data = json.loads(result.stdout)
    assert data["changed"] and data["uploaded"] is None
    assert any("not copied to the bucket" in w for w in data["warnings"])
    assert (install.root / data["backup"]).stat().st_mode & 0o777 == 0o600
    assert install.app_yml()["kestra"]["jdbc"]["cleaner"]["retention"] == "14d"
    assert install.deployment()["status"].get("readyReplicas") == 1


def test_rollback_over_a_config_patch_takes_the_field_back(install):
    install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")
    install.edit_overlay("workerThreads: 8", "workerThreads: 9")
    install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")
    patch(install, "4m", "--no-restart")
    result = install.run_ok("rollback", "--env", "dev", "--yes", "--output", "json")
    data = json.loads(result.stdout)
    assert data["to_revision"] == 1 and data["ok"] is True
    assert any("kestra-ops" in line for line in data["drift"])
    assert [r["status"] for r in install.history()] == ["superseded", "superseded", "deployed"]
    assert grace(install) == "5m" and owners(install) == {"helm"}
    args = install.deployment()["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "8" in args  # revision 1's --worker-thread
