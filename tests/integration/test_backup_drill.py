"""backup drill never touches a database it did not create (issue 12, item 1), against real
PostgreSQL: its own scratch database (unique name, dropped afterwards, also on failure and
Ctrl-C), or a given --scratch-url that is neither the source (however the URL spells it) nor
non-empty."""

from __future__ import annotations

import json

import pytest

from tests.integration.backup_support import (  # noqa: F401 - fixtures
    PASSWORD, backup_env, backup_json, kestra, pg_cluster, pg_db, project, run, s3, seaweed)
from tests.fakes.postgres_server import USER


def drills_left(pg_cluster) -> list[str]:
    import psycopg

    with psycopg.connect(pg_cluster.url()) as conn:
        return [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE "
                                           "'kestra_drill_%'").fetchall()]


def count(pg_cluster, db: str, table: str = "logs") -> int:
    import psycopg

    with psycopg.connect(pg_cluster.url(db)) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.fixture
def backed_up(backup_env):
    project, source = backup_env
    code, data, output = backup_json(project, "--what", "db")
    assert code == 0, output
    return project, source


def source_spellings(pg_cluster, source: str) -> list[str]:
    """The live database, spelled as the source is, and in ways a URL comparison misses."""
    socket_dir = pg_cluster.datadir.rsplit("/", 1)[0]
    return [pg_cluster.url(source),
            f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{pg_cluster.port}/{source}"
            "?application_name=drill",
            f"postgresql://{USER}@/{source}?host={socket_dir}&port={pg_cluster.port}"]


def test_scratch_url_at_the_live_database_is_refused_and_nothing_dropped(backed_up, pg_cluster):
    """The reproduction: rows written since the backup survive a drill pointed at the source."""
    project, source = backed_up
    pg_cluster.execute(source, "INSERT INTO logs VALUES (0, 'written after the backup')")
    before = count(pg_cluster, source)
    for url in source_spellings(pg_cluster, source):
        result = run(project, "backup", "drill", "--env", "dev", "--database-only", "--scratch-url", url)
        assert result.exit_code == 2, (url, result.output)
        assert "is the source database" in result.output, result.output
        assert "Traceback" not in result.output and PASSWORD not in result.output
        assert count(pg_cluster, source) == before
    assert drills_left(pg_cluster) == []


def test_scratch_url_not_empty_is_refused(backed_up, pg_cluster, pg_db):
    project, _ = backed_up
    other = pg_db()
    pg_cluster.execute(other, "CREATE TABLE keep (n int); INSERT INTO keep VALUES (1)")
    result = run(project, "backup", "drill", "--env", "dev", "--database-only", "--scratch-url",
                 pg_cluster.url(other))
    assert result.exit_code == 2, result.output
    assert f"scratch database {other!r}" in result.output and "not empty" in result.output
    assert count(pg_cluster, other, "keep") == 1


def test_an_empty_scratch_url_is_used_and_kept(backed_up, pg_cluster, pg_db):
    project, _ = backed_up
    scratch = pg_db()
    result = run(project, "backup", "drill", "--env", "dev", "--database-only", "--scratch-url",
                 pg_cluster.url(scratch), "--output", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and report["counts"]["public.logs"] == [24_000, 24_000]
    assert report["scratch"] == {"database": scratch, "created": False}
    assert count(pg_cluster, scratch) == 24_000  # ours to look at; not dropped: not ours


def test_own_scratch_has_a_unique_name_and_is_dropped(backed_up, pg_cluster):
    project, _ = backed_up
    names = []
    for _ in range(2):
        result = run(project, "backup", "drill", "--env", "dev", "--database-only", "--output", "json")
        assert result.exit_code == 0, result.output
        names.append(json.loads(result.stdout)["scratch"]["database"])
    assert names[0] != names[1] and all(n.startswith("kestra_drill_") for n in names)
    assert drills_left(pg_cluster) == []


@pytest.mark.parametrize("fault, code", [("fail", 1), ("ctrl-c", 130)])
def test_own_scratch_is_dropped_on_failure_and_ctrl_c(fault, code, backed_up, pg_cluster,
                                                      monkeypatch):
    from kestra_ops.errors import OperationFailed
    from kestra_ops.workflows.backup import restore as backup_restore

    project, _ = backed_up
    created = []

    def broken(storage, bucket, env, s, url, *, clean):
        assert not clean  # a drill never restores with --clean
        created.append(url.dbname)
        assert url.dbname in drills_left(pg_cluster)
        raise KeyboardInterrupt() if fault == "ctrl-c" else OperationFailed("pg_restore died")

    monkeypatch.setattr(backup_restore, "restore_db", broken)
    result = run(project, "backup", "drill", "--env", "dev", "--database-only")
    assert result.exit_code == code, result.output
    assert created and drills_left(pg_cluster) == []


def test_an_existing_database_of_the_same_name_is_never_dropped(backed_up, pg_cluster,
                                                                  monkeypatch):
    """CREATE DATABASE failing (the name taken) means it is not ours: it is left alone."""
    from kestra_ops.workflows.backup import drill

    project, _ = backed_up
    taken = pg_cluster.create_db("kestra_drill_taken")
    pg_cluster.execute(taken, "CREATE TABLE keep (n int); INSERT INTO keep VALUES (1)")
    monkeypatch.setattr(drill, "scratch_name", lambda: taken)
    try:
        result = run(project, "backup", "drill", "--env", "dev", "--database-only")
        assert result.exit_code == 1, result.output
        assert "already exists" in result.output
        assert count(pg_cluster, taken, "keep") == 1
    finally:
        import psycopg

        with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{taken}"')
