"""Which database ``backup run`` dumps per database.mode (the DSN building; no server), and the
wait for the CloudNativePG operator's Backup (its reads stubbed; the real API in
tests/e2e/test_database_modes_e2e.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from kestra_ops.adapters import cnpg
from kestra_ops.adapters.postgres_url import DatabaseURL
from kestra_ops.errors import InvalidInput, NotFound, OperationFailed
from kestra_ops.workflows.backup import cnpg_backup
from kestra_ops.workflows.backup.database_target import resolve_database, with_tls

ENV = SimpleNamespace(namespace="kestra-ns", values_paths=())
EXTERNAL = {"database": {"mode": "external", "external": {"host": "pg.example.com",
                                                           "port": 6432, "database": "k"}}}
CNPG = {"database": {"mode": "cloudnativepg", "cloudnativepg": {"clusterName": "db"}}}


def test_bundled_mode_is_the_given_url_unchanged():
    url = resolve_database(ENV, "postgresql://u:pw@h:5432/d", values={},
                           environ={})
    assert (url.url, url.password) == ("postgresql://u@h:5432/d", "pw")
    with pytest.raises(InvalidInput, match="no database"):
        resolve_database(ENV, None, values={"database": {"mode": "bundled"}}, environ={})


def test_external_mode_builds_the_url_with_verify_full_and_the_password_variable():
    url = resolve_database(ENV, None, values=EXTERNAL,
                           environ={"KESTRA_OPS_DB_PASSWORD": "s3cret"})
    assert url.url == "postgresql://kestra@pg.example.com:6432/k?sslmode=verify-full"
    assert url.password == "s3cret" and "s3cret" not in str(url)


def test_external_mode_keeps_a_given_url_but_never_weaker_tls():
    given = "postgresql://me@127.0.0.1:5433/k?sslrootcert=/tmp/ca.pem"
    url = resolve_database(ENV, given, values=EXTERNAL, environ={})
    assert url.sslmode == "verify-full" and url.param("sslrootcert") == "/tmp/ca.pem"
    with pytest.raises(InvalidInput, match="sslmode disable is weaker than database.external"):
        resolve_database(ENV, given + "&sslmode=disable", values=EXTERNAL, environ={})
    relaxed = {"database": {**EXTERNAL["database"], "external": {
        **EXTERNAL["database"]["external"], "sslmode": "require"}}}
    assert resolve_database(ENV, given + "&sslmode=verify-ca", values=relaxed,
                            environ={}).sslmode == "verify-ca"
    with pytest.raises(InvalidInput, match="not one of"):
        with_tls(DatabaseURL.parse(given + "&sslmode=bogus"), "require", "external")


def test_external_mode_without_host_says_so():
    with pytest.raises(InvalidInput, match="database.external.host is not set"):
        resolve_database(ENV, None, values={"database": {"mode": "external"}}, environ={})


def test_cloudnativepg_mode_names_the_rw_service_of_the_namespace():
    url = resolve_database(ENV, None, values=CNPG, environ={"KESTRA_OPS_DB_PASSWORD": "x"})
    assert url.url == "postgresql://kestra@db-rw.kestra-ns.svc:5432/kestra?sslmode=verify-full"


def test_unknown_mode_is_invalid_input():
    with pytest.raises(InvalidInput, match="database.mode 'managed'"):
        resolve_database(ENV, "postgresql://h/d", values={"database": {"mode": "managed"}},
                         environ={})


# ------------------------------------------------------------------ the operator's Backup

class Operator:
    """Stands in for the API: the Backup's phases, one per read."""

    def __init__(self, phases, cluster=True, status=None):
        self.phases, self.cluster, self.status = list(phases), cluster, status or {}
        self.created = []

    def install(self, monkeypatch):
        monkeypatch.setattr(cnpg, "read_cluster",
                            lambda kube, ns, name: {"metadata": {"name": name}}
                            if self.cluster else None)
        monkeypatch.setattr(cnpg, "create_backup", lambda kube, ns, name, cluster, **kw:
                            self.created.append((ns, name, cluster, kw["labels"])))
        monkeypatch.setattr(cnpg, "read_backup", self.read)

    def read(self, kube, ns, name):
        phase = self.phases.pop(0) if len(self.phases) > 1 else self.phases[0]
        return {"status": {"phase": phase, **(self.status if phase else {})}}


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += max(seconds, 0.5)


def test_completed_backup_is_recorded(monkeypatch):
    op = Operator([None, "started", "running", "completed"],
                  status={"backupId": "20261206T120000", "beginWal": "000000010000000000000004",
                          "endWal": "000000010000000000000005",
                          "destinationPath": "s3://b/cnpg", "serverName": "db"})
    op.install(monkeypatch)
    clock, seen = Clock(), []
    entry = cnpg_backup.take(None, "ns", "db", "20261206T120000Z", timeout=60, update=seen.append,
                             clock=clock, sleep=clock.sleep)
    assert op.created == [("ns", "db-20261206t120000z", "db",
                           {"app.kubernetes.io/managed-by": "kestra-ops",
                            "kestra-ops/set": "20261206t120000z"})]
    assert entry["name"] == "db-20261206t120000z" and entry["phase"] == "completed"
    assert (entry["backupId"], entry["beginWal"], entry["endWal"], entry["destinationPath"]) == (
        "20261206T120000", "000000010000000000000004", "000000010000000000000005",
        "s3://b/cnpg")
    assert "waiting for the operator" in seen[0] and "running" in seen[2]


def test_failed_phase_and_timeout_and_missing_cluster(monkeypatch):
    Operator(["running", "failed"], status={"error": "can't upload"}).install(monkeypatch)
    clock = Clock()
    with pytest.raises(OperationFailed, match="ended failed: can't upload"):
        cnpg_backup.take(None, "ns", "db", "s1", timeout=60, clock=clock, sleep=clock.sleep)
    Operator(["running"]).install(monkeypatch)
    with pytest.raises(OperationFailed, match="still running after 5s; it is left"):
        cnpg_backup.take(None, "ns", "db", "s2", timeout=5, clock=clock, sleep=clock.sleep)
    Operator(["running"], cluster=False).install(monkeypatch)
    with pytest.raises(NotFound, match="cluster db not found in ns"):
        cnpg_backup.take(None, "ns", "db", "s3", timeout=5, clock=clock, sleep=clock.sleep)


def test_ctrl_c_while_waiting_propagates_and_records_nothing(monkeypatch):
    Operator(["running"]).install(monkeypatch)

    def interrupted(_seconds):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cnpg_backup.take(None, "ns", "db", "s", timeout=60, sleep=interrupted)


@pytest.mark.parametrize("timeout", [0, -5, float("nan"), float("inf")])
def test_a_timeout_that_would_never_end_or_is_none_is_refused(monkeypatch, timeout):
    """--cnpg-timeout nan (click reads it as a float) compared False to every deadline: the
    wait never ended. Refused before the Backup is created."""
    created = []
    monkeypatch.setattr(cnpg, "create_backup", lambda *a, **k: created.append(a))
    with pytest.raises(InvalidInput, match="--cnpg-timeout"):
        cnpg_backup.take(None, "ns", "db", "s", timeout=timeout)
    assert created == []
