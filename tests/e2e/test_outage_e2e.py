"""An API outage is not a stuck release: deploy says it cannot reach the API server, in words,
and does not send the operator to ``--repair`` (issue 10, item 9)."""

from __future__ import annotations

import socket

import yaml


def test_deploy_during_an_api_outage_does_not_suggest_repair(install, monkeypatch):
    install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")
    with socket.socket() as s:  # a port nothing listens on: the API server is "down"
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = yaml.safe_load(install.kubeconfig.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{port}"
    down = install.root / "kubeconfig-down"
    down.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(down))
    result = install.run("deploy", "--env", "dev", "--yes", "--skip-bucket")
    assert result.exit_code == 1
    text = result.stdout + result.stderr
    assert f"127.0.0.1:{port}" in text and "connection refused" in text
    assert "--repair" not in text and "stuck" not in text
    for name in ("MaxRetryError", "NewConnectionError", "Traceback"):
        assert name not in text
    monkeypatch.setenv("KUBECONFIG", str(install.kubeconfig))
    assert [r["status"] for r in install.history()] == ["deployed"]
