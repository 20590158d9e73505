"""backup prune against SeaweedFS: sets laid out as backup run writes them (backup_set's layout),
in the backup bucket kestra-dev-backups (and, for --legacy, in Kestra's bucket kestra-dev)."""

from __future__ import annotations

import datetime
import json
import textwrap

import pytest
from click.testing import CliRunner

from kestra_ops.cli import State
from kestra_ops.cli.backup_prune import prune_cmd
from kestra_ops.workflows.backup import sets as backup_set
from tests.integration.backup_support import BACKUP_BUCKET, BUCKET, s3, seaweed  # noqa: F401

UTC = datetime.timezone.utc


@pytest.fixture
def project(tmp_path, s3, monkeypatch):
    (tmp_path / "kestra-ops.yaml").write_text(textwrap.dedent(f"""\
        environments:
          dev: {{minio: {{endpoint: "{s3.endpoint}", secure: false, bucket: kestra-dev}}}}
        """))
    for var in ("KESTRA_OPS_MINIO_ENDPOINT", "KESTRA_OPS_MINIO_BUCKET",
                "KESTRA_OPS_BACKUP_BUCKET"):
        monkeypatch.delenv(var, raising=False)
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    # prune runs with the operator's backup key (one that may delete): the root identity here
    monkeypatch.setenv("KESTRA_OPS_BACKUP_ACCESS_KEY", s3.access_key)
    monkeypatch.setenv("KESTRA_OPS_BACKUP_SECRET_KEY", s3.secret_key)
    s3.create_bucket(BUCKET)
    s3.create_bucket(BACKUP_BUCKET)
    return tmp_path


def put_set(s3, when: datetime.datetime, status: str | None = "complete",
            bucket: str = BACKUP_BUCKET) -> str:
    """A set at ``when``: artefacts, and a manifest with ``status`` (None: no manifest)."""
    name = backup_set.stamp(when)
    client = s3.client()
    import io

    for artefact in (backup_set.DB, backup_set.FLOWS):
        data = b"x" * 10
        client.put_object(bucket, backup_set.key("dev", name, artefact), io.BytesIO(data),
                          len(data))
    if status is not None:
        manifest = json.dumps({"version": 1, "env": "dev", "set": name, "status": status,
                               "artefacts": {}, "timings": {"total": 1.0}}).encode()
        client.put_object(bucket, backup_set.key("dev", name, backup_set.MANIFEST),
                          io.BytesIO(manifest), len(manifest))
    return name


def sets_in_bucket(s3, bucket: str = BACKUP_BUCKET) -> set[str]:
    objs = s3.client().list_objects(bucket, prefix="backups/dev/", recursive=True)
    return {o.object_name.split("/")[2] for o in objs}


def prune(root, *args: str):
    return CliRunner().invoke(prune_cmd, ["--env", "dev", *args],
                              obj=State(str(root / "kestra-ops.yaml"), False))


def days_ago(n: float) -> datetime.datetime:
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    return now - datetime.timedelta(days=n)


def dates_ago(n: float) -> datetime.datetime:
    """``n`` days before the last noon (UTC): sets a day apart fall on different calendar days
    whatever the time of the run (from now, 0.01 and 1 day ago share a date just after midnight,
    and the daily rule then keeps only one of them)."""
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    noon = now.replace(hour=12, minute=0, second=0)
    anchor = noon if noon <= now else noon - datetime.timedelta(days=1)
    return anchor - datetime.timedelta(days=n)


KEEP = ("--keep-daily", "2", "--keep-weekly", "0", "--keep-monthly", "0")


def test_dry_run_deletes_nothing_confirm_deletes_exactly_the_plan(project, s3):
    names = [put_set(s3, dates_ago(d)) for d in (0.01, 1, 2, 3)]
    old_incomplete = put_set(s3, dates_ago(2.5), status=None)
    before = sets_in_bucket(s3)

    dry = prune(project, *KEEP, "--output", "json")
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.output)
    assert plan["dry_run"] and plan["deleted"] == []
    assert list(plan["keep"]) == names[:2]
    assert plan["delete"] == names[2:] and plan["delete_incomplete"] == [old_incomplete]
    assert sets_in_bucket(s3) == before

    done = prune(project, *KEEP, "--confirm")
    assert done.exit_code == 0, done.output
    assert "deleted 3" in done.output
    assert sets_in_bucket(s3) == set(names[:2])


def test_newest_failed_deletes_nothing(project, s3):
    for d in (1, 2, 3, 4):
        put_set(s3, days_ago(d))
    put_set(s3, days_ago(3.5), status=None)
    failed = put_set(s3, days_ago(0.01), status="failed")
    before = sets_in_bucket(s3)
    result = prune(project, "--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0",
                   "--confirm")
    assert result.exit_code == 1
    assert f"the newest backup set {failed} is incomplete or failed" in result.output
    assert sets_in_bucket(s3) == before


def test_newest_without_manifest_blocks_too(project, s3):
    put_set(s3, days_ago(2))
    put_set(s3, days_ago(0.01), status=None)
    before = sets_in_bucket(s3)
    result = prune(project, *KEEP, "--confirm", "--output", "json")
    assert result.exit_code == 1
    assert json.loads(result.output)["blocked"]
    assert sets_in_bucket(s3) == before


def test_newest_complete_survives_zero_retention(project, s3):
    newest = put_set(s3, days_ago(0.5))
    put_set(s3, days_ago(5))
    young_incomplete = put_set(s3, days_ago(0.9), status=None)  # maybe still running: kept
    result = prune(project, "--keep-daily", "0", "--keep-weekly", "0", "--keep-monthly", "0",
                   "--confirm")
    assert result.exit_code == 0, result.output
    assert sets_in_bucket(s3) == {newest, young_incomplete}


def test_prune_leaves_the_legacy_location_alone_unless_told(project, s3):
    """Sets in Kestra's bucket (the old location) are not pruned by default; --legacy prunes
    them (and only them)."""
    new = [put_set(s3, dates_ago(d)) for d in (0.01, 1, 2)]
    old = [put_set(s3, dates_ago(d), bucket=BUCKET) for d in (3, 4, 5)]
    done = prune(project, *KEEP, "--confirm", "--output", "json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["bucket"] == BACKUP_BUCKET
    assert sets_in_bucket(s3) == set(new[:2])
    assert sets_in_bucket(s3, BUCKET) == set(old)

    legacy = prune(project, *KEEP, "--confirm", "--legacy", "--output", "json")
    assert legacy.exit_code == 0, legacy.output
    assert json.loads(legacy.output)["bucket"] == BUCKET
    assert sets_in_bucket(s3, BUCKET) == set(old[:2])
    assert sets_in_bucket(s3) == set(new[:2])
