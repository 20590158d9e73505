"""restore_in_place / reset_schema against real PostgreSQL and SeaweedFS: a "1.3-like" database
is backed up, changed the way Kestra 2.0's start-up migrations change it (tables, a type and a
column dropped, new tables, a function, rows rewritten), then put back exactly as in the set."""

from __future__ import annotations

import time
import uuid

import pytest

from kestra_ops.adapters import postgres as pg
from kestra_ops.adapters import postgres_reset as reset
from kestra_ops.errors import Conflict, OperationFailed
from kestra_ops.results import Recorder, Report
from kestra_ops.workflows.backup import restore_in_place as rip
from kestra_ops.workflows.backup.locations import find_set
from tests.integration.backup_support import (  # noqa: F401 - fixtures
    BACKUP_BUCKET, PASSWORD, backup_env, backup_json, kestra, pg_cluster, pg_db, project, run,
    s3, seaweed)

SCHEMA_1_3 = """
    CREATE TYPE queue_type AS ENUM ('io.kestra.core.models.executions.Execution',
                                    'io.kestra.core.models.executions.LogEntry');
    CREATE TABLE flows (key varchar(250) PRIMARY KEY, value jsonb NOT NULL,
                        namespace varchar(150), deleted bool NOT NULL DEFAULT false);
    CREATE INDEX flows_namespace ON flows (namespace);
    CREATE TABLE executions (key varchar(250) PRIMARY KEY, value jsonb NOT NULL,
                             state_current varchar(50));
    CREATE TABLE templates (key varchar(250) PRIMARY KEY, value jsonb NOT NULL);
    CREATE TABLE executorstate (key varchar(250) PRIMARY KEY, value jsonb NOT NULL);
    CREATE TABLE triggers (key varchar(250) PRIMARY KEY, value jsonb NOT NULL,
                           next_execution_date timestamptz);
    CREATE TABLE queues ("offset" serial PRIMARY KEY, type queue_type NOT NULL,
                         key varchar(250) NOT NULL, value jsonb NOT NULL);
    CREATE SEQUENCE ids START 100;
    CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN NEW.deleted := coalesce(NEW.deleted, false); RETURN NEW; END $$;
    CREATE TRIGGER flows_touch BEFORE INSERT OR UPDATE ON flows FOR EACH ROW EXECUTE
        FUNCTION touch();
    CREATE VIEW running AS SELECT key FROM executions WHERE state_current = 'RUNNING';
    INSERT INTO flows SELECT 'main_f' || g, jsonb_build_object('id', 'f' || g), 'company.team'
        FROM generate_series(1, 200) g;
    INSERT INTO executions SELECT 'e' || g, jsonb_build_object('n', g),
        (ARRAY['RUNNING','SUCCESS'])[1 + g % 2] FROM generate_series(1, 500) g;
    INSERT INTO templates VALUES ('main_t1', '{"id": "t1"}');
    INSERT INTO executorstate VALUES ('e1', '{"state": "x"}');
    INSERT INTO triggers VALUES ('main_f1_sched', '{"v": 1}', '2026-01-01T00:00:00Z');
    INSERT INTO queues (type, key, value) SELECT 'io.kestra.core.models.executions.Execution',
        'e' || g, '{}' FROM generate_series(1, 50) g;
    SELECT nextval('ids'), nextval('ids');
"""

# what 2.0.01-schema / 2.0.02-queue-drop-legacy do to such a database (kestra-io/kestra
# jdbc-postgres/src/main/resources/migrations/), and rows written by Kestra 2.0 afterwards
MIGRATED_2_0 = """
    DROP TABLE IF EXISTS templates; DROP TABLE IF EXISTS executorstate;
    ALTER TABLE triggers DROP COLUMN IF EXISTS next_execution_date;
    DROP INDEX flows_namespace;
    DROP TABLE IF EXISTS queues; DROP TYPE IF EXISTS queue_type;
    CREATE TABLE queues (id bigserial PRIMARY KEY, routing_key varchar(250), value jsonb);
    CREATE TABLE locks (category varchar(255), id varchar(255), owner varchar(255),
                        PRIMARY KEY (category, id));
    CREATE TABLE task_outputs (key varchar(250) PRIMARY KEY, value jsonb NOT NULL);
    ALTER TABLE executions ADD COLUMN trigger_id varchar(150)
        GENERATED ALWAYS AS (value ->> 'triggerId') STORED;
    CREATE TYPE lock_state AS ENUM ('held', 'free');
    CREATE DOMAIN short_text AS varchar(20);
    CREATE FUNCTION new_helper(a int) RETURNS int LANGUAGE sql AS 'SELECT a + 1';
    CREATE PROCEDURE new_proc() LANGUAGE sql AS 'SELECT 1';
    CREATE MATERIALIZED VIEW stats AS SELECT count(*) AS n FROM executions;
    CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RETURN NEW; END $$;
    UPDATE triggers SET value = '{"TriggerState": true}';
    UPDATE executions SET value = value || '{"v2": true}' WHERE key < 'e3';
    DELETE FROM flows WHERE key > 'main_f150';
    INSERT INTO locks VALUES ('migration', 'x', 'pod-1');
    INSERT INTO task_outputs VALUES ('o1', '{}');
    SELECT nextval('ids') FROM generate_series(1, 5);
"""


def catalog(cluster, db: str) -> dict:
    """What a restore must bring back: tables and their columns, indexes, types, routines
    (with their source), views, sequences (with their position), triggers, extensions."""
    import psycopg

    queries = {
        "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default "
                   "FROM information_schema.columns WHERE table_schema = 'public' "
                   "ORDER BY table_name, ordinal_position",
        "relations": "SELECT c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n "
                     "ON n.oid = c.relnamespace WHERE n.nspname = 'public' ORDER BY 1",
        "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                   "ORDER BY 1",
        "types": "SELECT t.typname, t.typtype::text, coalesce(string_agg(e.enumlabel, ',' "
                 "ORDER BY e.enumsortorder), '') FROM pg_type t JOIN pg_namespace n ON "
                 "n.oid = t.typnamespace LEFT JOIN pg_enum e ON e.enumtypid = t.oid WHERE "
                 "n.nspname = 'public' GROUP BY 1, 2 ORDER BY 1",
        "routines": "SELECT p.oid::regprocedure::text, p.prokind::text, p.prosrc FROM pg_proc "
                    "p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = "
                    "'public' ORDER BY 1",
        "triggers": "SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT "
                    "tgisinternal ORDER BY 1",
        "sequence": "SELECT last_value FROM ids",
        "extensions": "SELECT extname FROM pg_extension ORDER BY 1",
    }
    with psycopg.connect(cluster.url(db)) as conn:
        return {k: conn.execute(q).fetchall() for k, q in queries.items()}


def rows(cluster, db: str) -> dict:
    import psycopg

    out = {}
    with psycopg.connect(cluster.url(db)) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
        for table in tables:
            out[table] = conn.execute(
                f'SELECT count(*), md5(coalesce(string_agg(t::text, \',\' ORDER BY t::text), '
                f'\'\')) FROM "{table}" t').fetchone()
    return out


@pytest.fixture
def live(backup_env, pg_cluster, pg_db, monkeypatch):
    """(project, env, live database name, set name): the 1.3-like database backed up (db only)
    through `backup run`, the set found in the backup bucket."""
    from kestra_ops.settings import load_config

    project, _ = backup_env
    name = pg_db()
    pg_cluster.execute(name, SCHEMA_1_3)
    monkeypatch.setenv("KESTRA_OPS_DATABASE_URL", pg_cluster.url(name))
    code, data, output = backup_json(project, "--what", "db")
    assert code == 0, output
    env = load_config(project / "kestra-ops.yaml").environment("dev")
    return project, env, name, data["set"]


def _set(env, name):
    place, s = find_set(env, name)
    assert place.bucket == BACKUP_BUCKET
    return place.storage, place.bucket, s


def test_restore_in_place_undoes_the_2_0_migrations(live, pg_cluster):
    project, env, db, name = live
    before_catalog, before_rows = catalog(pg_cluster, db), rows(pg_cluster, db)
    assert set(before_rows) == {"executions", "executorstate", "flows", "queues", "templates",
                                "triggers"}
    pg_cluster.execute(db, MIGRATED_2_0)
    migrated = catalog(pg_cluster, db)
    assert migrated != before_catalog and rows(pg_cluster, db) != before_rows
    assert {"locks", "task_outputs"} <= set(rows(pg_cluster, db))

    storage, bucket, s = _set(env, name)
    report = Report("backup restore", "dev")
    url = pg.DatabaseURL.parse(pg_cluster.url(db))
    detail = rip.restore_in_place(storage, bucket, "dev", s, url, rec=Recorder(report))

    assert catalog(pg_cluster, db) == before_catalog
    assert rows(pg_cluster, db) == before_rows
    assert before_rows["queues"][0] == 50 and before_rows["flows"][0] == 200
    size = s.manifest["artefacts"]["db.dump.zst"]["size"]
    # what the 2.0-like database held in public: 8 tables (flows, executions, triggers, queues,
    # locks, task_outputs), 1 view, 1 materialized view, 2 sequences (queues' own and ids),
    # touch + new_helper, new_proc, lock_state + short_text
    assert detail == (f"database {db!r} reset (6 tables, 1 view, 1 materialized view, "
                      f"2 sequences, 2 functions, 1 procedure, 2 types) and restored from "
                      f"{name} ({size} bytes, sha256 ok)")
    assert [(st.name.split(" ")[0], st.status) for st in report.steps] == [
        ("check", "pass"), ("reset", "pass"), ("database", "pass")]
    assert PASSWORD not in detail and all(PASSWORD not in st.detail for st in report.steps)


def test_a_locked_table_is_a_conflict_within_the_lock_timeout(live, pg_cluster):
    import psycopg

    _, env, db, name = live
    url = pg.DatabaseURL.parse(pg_cluster.url(db))
    with psycopg.connect(pg_cluster.url(db)) as holder:  # a Kestra polling its queue
        holder.execute("SELECT count(*) FROM executions")  # keeps its lock: no commit yet
        started = time.monotonic()
        with pytest.raises(Conflict) as err:
            reset.reset_schema(url, lock_timeout=1)
        assert time.monotonic() - started < 10
        message = str(err.value)
        assert "is in use" in message and "stop Kestra first" in message
        assert 'table "public"."executions"' in message and "nothing was dropped" in message
        assert "1 other session(s): pid" in message and PASSWORD not in message

        # restore_in_place refuses before anything, because a session is connected at all
        storage, bucket, s = _set(env, name)
        with pytest.raises(Conflict) as err:
            rip.restore_in_place(storage, bucket, "dev", s, url, lock_timeout=1,
                                 session_wait=1)
        assert "1 other session(s) connected" in str(err.value)
        assert "nothing was changed" in str(err.value)
        holder.rollback()
    # one transaction: the tables dropped before the lock wait (flows...) are all still there
    assert set(rows(pg_cluster, db)) == {"executions", "executorstate", "flows", "queues",
                                         "templates", "triggers"}


def test_objects_of_an_extension_are_kept(pg_cluster, pg_db):
    import psycopg

    db = pg_db()
    with psycopg.connect(pg_cluster.url(db), autocommit=True) as conn:
        available = {r[0] for r in conn.execute(
            "SELECT name FROM pg_available_extensions WHERE name IN ('citext', 'pgcrypto')")}
    if not available:
        pytest.skip("neither citext nor pgcrypto is installed with this PostgreSQL server")
    for ext in sorted(available):
        pg_cluster.execute(db, f"CREATE EXTENSION {ext}")
    column = "citext" if "citext" in available else "text"
    pg_cluster.execute(db, f"CREATE TABLE users (name {column}); CREATE TYPE mood AS ENUM "
                       "('ok'); CREATE FUNCTION mine() RETURNS int LANGUAGE sql AS 'SELECT 1'")

    def owned(conn) -> list[tuple]:
        return conn.execute(
            "SELECT d.classid::regclass::text, count(*) FROM pg_depend d JOIN pg_extension e "
            "ON e.oid = d.refobjid WHERE d.deptype = 'e' GROUP BY 1 ORDER BY 1").fetchall()

    with psycopg.connect(pg_cluster.url(db)) as conn:
        extension_objects = owned(conn)
    assert extension_objects  # functions (and citext's type) in public, owned by extensions

    dropped = reset.reset_schema(pg.DatabaseURL.parse(pg_cluster.url(db)))

    assert dropped == ["1 table", "1 function", "1 type"]
    with psycopg.connect(pg_cluster.url(db)) as conn:
        assert owned(conn) == extension_objects
        assert {r[0] for r in conn.execute("SELECT extname FROM pg_extension")} >= available
        left = conn.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = "
                            "c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN "
                            "('r', 'v', 'S')").fetchone()[0]
        assert left == 0
        if "pgcrypto" in available:
            assert conn.execute("SELECT encode(digest('a', 'sha1'), 'hex')").fetchone()[0] == \
                "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8"


def test_a_dump_that_does_not_match_its_manifest_changes_nothing(live, pg_cluster):
    from kestra_ops.workflows.backup import sets as bs

    _, env, db, name = live
    pg_cluster.execute(db, MIGRATED_2_0)
    before = catalog(pg_cluster, db), rows(pg_cluster, db)
    storage, bucket, s = _set(env, name)
    s.manifest["artefacts"][bs.DB]["sha256"] = "0" * 64
    bs.write_manifest(storage, bucket, "dev", name, s.manifest)
    storage, bucket, s = _set(env, name)

    with pytest.raises(OperationFailed) as err:
        rip.restore_in_place(storage, bucket, "dev", s, pg.DatabaseURL.parse(
            pg_cluster.url(db)))
    assert str(err.value) == (f"backup set {name}: db.dump.zst: sha256 differs from the "
                              "manifest: nothing was changed")
    assert (catalog(pg_cluster, db), rows(pg_cluster, db)) == before


def test_a_dump_replaced_after_the_check_leaves_the_database_empty_and_says_so(
        live, pg_cluster, pg_db, monkeypatch):
    """The object changes between the check and the restore (another valid dump): pg_restore
    never gets the last bytes, is killed, and commits nothing."""
    from kestra_ops.workflows.backup import sets as bs

    project, env, db, name = live
    other = pg_db()
    pg_cluster.execute(other, "CREATE TABLE intruder (x int); INSERT INTO intruder VALUES (1)")
    monkeypatch.setenv("KESTRA_OPS_DATABASE_URL", pg_cluster.url(other))
    time.sleep(1.01)  # set names are UTC seconds
    code, data, output = backup_json(project, "--what", "db")
    assert code == 0, output
    storage, bucket, s = _set(env, name)
    dump_of_other = bs.read_small(storage, bucket, bs.key("dev", data["set"], bs.DB))
    real_reset = reset.reset_schema

    def reset_then_swap(url, schema="public", **kw):
        out = real_reset(url, schema, **kw)
        bs.put_bytes(storage, bucket, bs.key("dev", name, bs.DB), dump_of_other)
        return out

    monkeypatch.setattr(reset, "reset_schema", reset_then_swap)
    url = pg.DatabaseURL.parse(pg_cluster.url(db))
    with pytest.raises(OperationFailed) as err:
        rip.restore_in_place(storage, bucket, "dev", s, url)
    message = str(err.value)
    size = s.manifest["artefacts"][bs.DB]["size"]
    assert f"db.dump.zst: size {len(dump_of_other)} != manifest {size}; nothing restored" \
        in message
    assert "the database is now EMPTY" in message
    assert message.endswith(f"Retry with: kestra-ops backup restore --env dev {name} "
                            f"--to-database {url} --clean (the password is not shown: put it "
                            "back in the URL or set PGPASSWORD)")
    assert PASSWORD not in message
    assert pg.is_empty(url)  # neither the set's tables nor the intruder's


def test_a_restore_failing_after_the_reset_says_empty_and_the_retry_command_works(
        live, pg_cluster, monkeypatch):
    """A grant in the dump names a role dropped since: pg_restore fails after the reset."""
    import psycopg

    project, env, db, _ = live
    role = f"reader_{uuid.uuid4().hex[:8]}"
    pg_cluster.execute(db, f"CREATE ROLE {role}; GRANT SELECT ON flows TO {role}")
    time.sleep(1.01)  # set names are UTC seconds
    code, data, output = backup_json(project, "--what", "db")
    assert code == 0, output
    name = data["set"]
    original = catalog(pg_cluster, db), rows(pg_cluster, db)
    pg_cluster.execute(db, MIGRATED_2_0 + f"; REVOKE ALL ON flows FROM {role}; DROP ROLE {role}")

    storage, bucket, s = _set(env, name)
    url = pg.DatabaseURL.parse(pg_cluster.url(db))
    with pytest.raises(OperationFailed) as err:
        rip.restore_in_place(storage, bucket, "dev", s, url)
    message = str(err.value)
    assert f'role "{role}" does not exist' in message
    assert "the database is now EMPTY" in message
    retry = f"kestra-ops backup restore --env dev {name} --to-database {url} --clean"
    assert retry in message and PASSWORD not in message
    assert pg.is_empty(url)

    pg_cluster.execute("postgres", f"CREATE ROLE {role}")
    monkeypatch.setenv("PGPASSWORD", PASSWORD)  # the URL shown has none
    again = run(project, *retry.split()[1:], "--yes")
    assert again.exit_code == 0, again.output
    assert (catalog(pg_cluster, db), rows(pg_cluster, db)) == original
    with psycopg.connect(pg_cluster.url(db)) as conn:
        assert conn.execute("SELECT has_table_privilege(%s, 'flows', 'SELECT')",
                            (role,)).fetchone()[0]


def test_an_object_the_role_may_not_drop_is_permission_denied_and_nothing_dropped(
        pg_cluster, pg_db):
    from kestra_ops.errors import PermissionDenied

    db = pg_db()
    role, secret = f"operator_{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    pg_cluster.execute(db, f"CREATE ROLE {role} LOGIN PASSWORD '{secret}'; "
                       f"CREATE TABLE mine (x int); CREATE TABLE theirs (x int); "
                       f"ALTER TABLE mine OWNER TO {role}")
    url = pg.DatabaseURL.parse(f"postgresql://{role}:{secret}@{pg_cluster.host}:"
                               f"{pg_cluster.port}/{db}")
    with pytest.raises(PermissionDenied) as err:
        reset.reset_schema(url)
    message = str(err.value)
    assert 'may not drop table "public"."theirs": must be owner of table theirs' in message
    assert message.endswith("; nothing was dropped") and secret not in message
    assert set(rows(pg_cluster, db)) == {"mine", "theirs"}  # "mine" (dropped first) is back


def test_a_session_that_closes_while_waited_for_does_not_stop_the_restore(live, pg_cluster):
    """Kestra's last pod still terminating: its connection goes within session_wait."""
    import threading

    import psycopg

    _, env, db, name = live
    before = rows(pg_cluster, db)
    pg_cluster.execute(db, MIGRATED_2_0)
    leaving = psycopg.connect(pg_cluster.url(db), autocommit=True)
    timer = threading.Timer(1.5, leaving.close)
    timer.start()
    try:
        storage, bucket, s = _set(env, name)
        started = time.monotonic()
        detail = rip.restore_in_place(storage, bucket, "dev", s,
                                      pg.DatabaseURL.parse(pg_cluster.url(db)), session_wait=20)
        assert 1.5 <= time.monotonic() - started
    finally:
        timer.join()
    assert detail.startswith(f"database {db!r} reset (6 tables")
    assert rows(pg_cluster, db) == before
