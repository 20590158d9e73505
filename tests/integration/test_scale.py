"""kestra-ops scale on the release tests' install (helpers_checks): the fake Kubernetes API, the
stand-in helm (the real helm renders), the fake Kestra server. What helm does to the fake cluster
(the new mode's Deployments, Service kestra's selector) is played in the tests, as
release_support does for the release tests."""

from __future__ import annotations

import json
import os
import stat

import yaml
from click.testing import CliRunner

from kestra_ops.adapters.helm import Helm
from kestra_ops.adapters.helm_cli import template
from kestra_ops.adapters.kestra_api import KestraClient
from kestra_ops.cli import cli
from tests.helpers_checks import DEP, NS, ROOT, install  # noqa: F401
from tests.integration.release_support import (CHECK, after_upgrade, failing_check, interrupt,
                                               lock_free)

FLOW = ("id: {id}\nnamespace: company.team\ntasks:\n  - id: log\n"
        "    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
SCHEDULED = FLOW + ("triggers:\n  - id: nightly\n    type: io.kestra.plugin.core.trigger.Schedule\n"
                    "    cron: \"0 2 * * *\"\n")


def scale(install, *args: str, env: str = "dev"):
    result = CliRunner().invoke(cli, ["--config", str(install.config), "scale", "--env", env,
                                      "--output", "json", *CHECK, *args])
    assert result.exit_code in (0, 1, 2, 130), result.output
    return result, json.loads(result.stdout)


def overlay(install):
    return install.root / "values" / "dev.yaml"


def one_pod_each(install) -> None:
    """One webserver (dev allows it): no PodDisruptionBudget, which the fake API does not
    serve (policy/v1); --workers 1 likewise."""
    overlay(install).write_text(overlay(install).read_text() + (
        "\n# distributed sizing for dev\ndistributed:\n  webserver:\n    replicas: 1\n"))


def seed_flows(install, *ids: str, scheduled: str | None = None) -> None:
    client = KestraClient(install.kestra.url, install.kestra.username, install.kestra.password)
    for flow_id in ids:
        client.create_flow((SCHEDULED if flow_id == scheduled else FLOW).format(id=flow_id))
    client.close()


def play_helm(install) -> None:
    """What `helm upgrade` does to the fake cluster: the chart's Deployments for the project's
    values now (the other mode's deleted, the new ones created), Service kestra's selector."""
    values = [install.root / "values" / "base.yaml", overlay(install)]
    rendered = template(ROOT / "charts" / "kestra", values, release="kestra", namespace=NS)
    assert rendered.ok, rendered.stderr
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    wanted = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    store = install.kube.store
    for dep in store.list("deployments", NS):
        if dep["metadata"]["name"] not in wanted:
            store.delete("deployments", NS, dep["metadata"]["name"], propagation="Background")
    live = {d["metadata"]["name"] for d in store.list("deployments", NS)}
    install.kube.seed(*[d for name, d in wanted.items() if name not in live], namespace=NS)
    service = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] ==
                   "kestra")

    def select(svc):
        svc["spec"]["selector"] = service["spec"]["selector"]
    store.mutate("services", NS, "kestra", select)
    assert install.kube.wait_until(lambda: all(
        (store.get("deployments", NS, n) or {}).get("status", {}).get("readyReplicas") ==
        d["spec"]["replicas"] for n, d in wanted.items()), timeout=10)


def test_dry_run_writes_nothing(install):
    before = overlay(install).read_bytes()
    mtime = overlay(install).stat().st_mtime_ns
    result, data = scale(install, "--mode", "distributed", "--workers", "3", "--dry-run")
    assert result.exit_code == 0 and data["outcome"] == "planned", result.output
    assert "+mode: distributed" in data["values_diff"] and "+    replicas: 3" in data["values_diff"]
    assert data["changes"] == ["mode: standalone -> distributed", "workers (replicas): 2 -> 3"]
    assert overlay(install).read_bytes() == before and overlay(install).stat().st_mtime_ns == mtime
    assert not install.helm.calls("upgrade") and lock_free(install)
    assert not (install.root / "backups").exists()
    assert not install.kestra.calls("GET", r"/flows/search$")  # nothing read from Kestra


def test_scale_out_keeps_the_comments_and_loses_nothing(install, monkeypatch):
    seed_flows(install, "a", "b", scheduled="b")
    one_pod_each(install)
    text = overlay(install).read_text()
    after_upgrade(monkeypatch, lambda: play_helm(install))
    result, data = scale(install, "--mode", "distributed", "--workers", "1", "--yes")
    assert result.exit_code == 0 and data["outcome"] == "scaled", result.output
    written = overlay(install).read_text()
    # every line and comment kept: the worker's count under the existing block, mode appended
    assert written == text.replace("distributed:\n", "distributed:\n  worker:\n"
                                   "    replicas: 1\n") + "\n# written by kestra-ops\nmode: distributed\n"
    assert yaml.safe_load(written)["distributed"]["worker"]["replicas"] == 1
    before, after = data["counts_before"], data["counts_after"]
    assert (before["flows"], before["triggers"]) == (2, 1)
    assert after["flows"] >= 2 and after["triggers"] == 1
    assert after["executions"] >= before["executions"]
    assert data["components"]["ok"] and "kestra-worker 1/1 ready" in data["components"]["ready"]
    assert not install.kube.store.get("deployments", NS, DEP)
    assert data["release"]["outcome"] == "released" and lock_free(install)
    assert data["overlay_restored"] is None  # written, and kept
    stored = install.root / "backups" / "scale" / "dev" / data["started"] / "report.json"
    assert stat.S_IMODE(os.stat(stored).st_mode) == 0o600
    assert json.loads(stored.read_text())["outcome"] == "scaled"
    # the same request again: nothing to change, nothing released
    upgrades = len(install.helm.calls("upgrade"))
    result, again = scale(install, "--mode", "distributed", "--workers", "1", "--yes")
    assert result.exit_code == 0 and again["outcome"] == "unchanged", result.output
    assert len(install.helm.calls("upgrade")) == upgrades


def test_fewer_flows_after_fails_with_both_numbers(install, monkeypatch):
    seed_flows(install, "a", "b", "c")
    one_pod_each(install)

    def helm_and_a_delete():
        play_helm(install)
        client = KestraClient(install.kestra.url, install.kestra.username,
                              install.kestra.password)
        for flow_id in ("a", "b", "c"):
            client.delete_flow("company.team", flow_id)
        client.close()

    after_upgrade(monkeypatch, helm_and_a_delete)
    result, data = scale(install, "--mode", "distributed", "--workers", "1", "--yes")
    assert result.exit_code == 1 and data["outcome"] == "lost", result.output
    was, now = data["counts_before"]["flows"], data["counts_after"]["flows"]
    assert now < was and f"flows {was} -> {now}" in data["message"]
    assert "does not touch the database" in data["message"]
    assert yaml.safe_load(overlay(install).read_text())["mode"] == "distributed"  # it runs


def test_a_values_rule_failure_blocks_before_any_write(install):
    overlay(install).write_text(overlay(install).read_text() + (
        "\ndistributed:\n  worker:\n    autoscaling:\n      enabled: true\n"))
    before = overlay(install).read_bytes()
    result, data = scale(install, "--mode", "distributed", "--yes")
    assert result.exit_code == 1 and data["outcome"] == "blocked", result.output
    assert "kestra/worker-autoscaling" in data["message"]
    finding = next(f for f in data["reports"][0]["findings"]
                   if f["rule"] == "kestra/worker-autoscaling")
    assert finding["severity"] == "error"
    assert finding["file"].endswith("values/dev.yaml")
    assert overlay(install).read_bytes() == before
    assert not install.helm.calls("upgrade") and lock_free(install)


def test_the_webserver_rule_blocks_a_distributed_staging(install):
    config = yaml.safe_load(install.config.read_text())
    config["environments"]["staging"] = {**config["environments"]["dev"],
                                         "values": ["values/base.yaml", "values/staging.yaml"]}
    install.config.write_text(yaml.safe_dump(config))
    (install.root / "values" / "staging.yaml").write_text(
        "# staging\ndistributed:\n  webserver:\n    replicas: 1  # one is enough here?\n")
    result, data = scale(install, "--mode", "distributed", "--dry-run", env="staging")
    assert result.exit_code == 1 and data["outcome"] == "blocked", result.output
    assert "kestra/distributed-webserver-replicas" in data["message"]
    assert "values/staging.yaml:4" in data["message"]


def test_an_overlay_another_environment_shares_is_refused(install):
    """Wrong target: staging listing dev's overlay as its own last layer; scaling dev would
    scale staging's values too."""
    config = yaml.safe_load(install.config.read_text())
    config["environments"]["staging"] = {**config["environments"]["dev"],
                                         "values": ["values/base.yaml", "values/dev.yaml"]}
    install.config.write_text(yaml.safe_dump(config))
    before = overlay(install).read_bytes()
    result, data = scale(install, "--mode", "distributed", "--yes")
    assert result.exit_code == 2 and data["outcome"] == "refused", result.output
    assert "also a values layer of staging" in data["message"]
    assert overlay(install).read_bytes() == before
    assert not install.helm.calls("upgrade") and lock_free(install)


def test_a_symlinked_overlay_is_refused(install):
    real = install.root / "values" / "dev-real.yaml"
    real.write_text(overlay(install).read_text())
    overlay(install).unlink()
    overlay(install).symlink_to(real.name)
    result, data = scale(install, "--mode", "distributed", "--yes")
    assert result.exit_code == 2 and data["outcome"] == "refused", result.output
    assert "symbolic link" in data["message"] and "nothing was changed" in data["message"]
    assert overlay(install).is_symlink() and "mode" not in yaml.safe_load(real.read_text())
    assert not install.helm.calls("upgrade")


def test_workers_on_standalone_is_invalid(install):
    result, data = scale(install, "--workers", "3", "--yes")
    assert result.exit_code == 2 and "--mode distributed" in data["message"]
    assert not install.helm.calls("upgrade")


def test_ctrl_c_during_the_release_puts_the_overlay_back(install, monkeypatch):
    one_pod_each(install)
    before = overlay(install).read_bytes()
    monkeypatch.setattr(Helm, "upgrade_install", interrupt)
    result, data = scale(install, "--mode", "distributed", "--workers", "1", "--yes")
    assert result.exit_code == 130 and data["outcome"] == "interrupted", result.output
    assert data["release"]["outcome"] == "interrupted"
    assert overlay(install).read_bytes() == before and data["overlay_restored"] is True
    assert "put back as it was" in data["message"] and lock_free(install)


def test_a_failed_release_rolls_back_and_puts_the_overlay_back(install, monkeypatch):
    one_pod_each(install)
    before = overlay(install).read_bytes()
    failing_check(install, monkeypatch)
    result, data = scale(install, "--mode", "distributed", "--workers", "1", "--yes")
    assert result.exit_code == 1 and data["outcome"] == "rolled-back", result.output
    assert "dev stays standalone" in data["message"]
    assert install.helm.calls("rollback") and lock_free(install)
    assert overlay(install).read_bytes() == before and data["overlay_restored"] is True


def test_an_overlay_edited_during_the_release_is_left_alone(install, monkeypatch):
    one_pod_each(install)
    failing_check(install, monkeypatch)
    upgrade = Helm.upgrade_install

    def upgraded_then_edited(self, *args, **kwargs):
        revision = upgrade(self, *args, **kwargs)
        overlay(install).write_text(overlay(install).read_text() + "# a colleague's note\n")
        return revision

    monkeypatch.setattr(Helm, "upgrade_install", upgraded_then_edited)
    result, data = scale(install, "--mode", "distributed", "--workers", "1", "--yes")
    assert result.exit_code == 1 and data["outcome"] == "rolled-back", result.output
    assert data["overlay_restored"] is False
    assert overlay(install).read_text().endswith("mode: distributed\n# a colleague's note\n")
    assert any("was not put back" in w and "mode back to standalone" in w for w in data["warnings"])


def test_kestra_unreadable_stops_before_any_change(install, monkeypatch):
    before = overlay(install).read_bytes()
    monkeypatch.setenv("KESTRA_OPS_KESTRA_URL", "http://127.0.0.1:9")
    result, data = scale(install, "--mode", "distributed", "--yes")
    assert result.exit_code == 1 and data["outcome"] == "failed", result.output
    assert "Kestra's counts before the change" in data["message"]
    assert "nothing was changed" in data["message"]
    assert overlay(install).read_bytes() == before
    assert not install.helm.calls("upgrade") and lock_free(install)


def test_the_report_masks_the_secrets_of_the_overlay(install, monkeypatch):
    secret = "Lit3ral-S3cret-pw"
    text = overlay(install).read_text()
    at = text.index("kestra:\n  url:")  # the kestra section last, a literal secret at its end:
    overlay(install).write_text(  # the diff's context shows that line (masked)
        text[:at] + "distributed:\n  webserver:\n    replicas: 1\n\n" + text[at:]
        + f"      secret-key: \"{secret}\"\n")
    after_upgrade(monkeypatch, lambda: play_helm(install))
    result, data = scale(install, "--mode", "distributed", "--workers", "1", "--yes")
    assert data["outcome"] == "scaled", result.output
    assert "secret-key" in data["values_diff"]  # the line is shown, its value masked
    stored = (install.root / "backups" / "scale" / "dev" / data["started"] /
              "report.json").read_text()
    for text in (result.stdout, result.stderr, stored):
        assert secret not in text
    text = CliRunner().invoke(cli, ["--config", str(install.config), "scale", "--env", "dev",
                                    "--mode", "standalone", "--dry-run"]).output
    assert secret not in text and "mode" in text
