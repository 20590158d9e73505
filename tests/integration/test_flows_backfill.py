"""`flows backfill`: windows from the Schedule cron (croniter), one labelled execution per window
with its scheduleDate, dry run, the max-executions guard."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from kestra_ops.errors import InvalidInput
from kestra_ops.workflows.flows.backfill import Schedule, schedules, windows
from tests.fakes.kestra_contract import OpenAPIContract
from tests.helpers_flows import OPENAPI, Project, flow, kestra, project, table  # noqa: F401

HOURLY = flow("ingest", "company.data", extra="") + (
    "triggers:\n"
    "  - id: hourly\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"0 * * * *\"\n"
    "  - id: off\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"*/5 * * * *\"\n"
    "    disabled: true\n"
    "  - id: hook\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: abc\n")
LEGACY = flow("legacy", "company.data") + (
    "triggers:\n  - id: nightly\n    type: io.kestra.core.models.triggers.types.Schedule\n"
    "    cron: \"0 2 * * *\"\n    timezone: Europe/Paris\n    inputs:\n      day: yesterday\n")


def backfills(project: Project) -> list:
    return project.kestra.calls("POST", r"/executions/company\.data/")


def test_hourly_cron_over_five_hours_is_five_labelled_executions(project: Project):
    project.kestra.add_flow(HOURLY)

    result = project.run("flows", "backfill", "company.data", "ingest", "--env", "dev",
                         "--start", "2026-01-01T00:00:00Z", "--end", "2026-01-01T05:00:00Z",
                         "--yes", "-o", "json")

    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["outcome"] == "created" and len(body["executions"]) == 5
    calls = backfills(project)
    assert [c.query["scheduleDate"][0] for c in calls] == [
        f"2026-01-01T0{h}:00:00+00:00" for h in range(5)]
    backfill_id = body["backfill_id"]
    for call in calls:
        assert sorted(call.query["labels"]) == sorted([
            "backfill:true", f"kestra-ops.backfill-id:{backfill_id}", "kestra-ops.trigger:hourly"])
    for execution in body["executions"]:
        labels = {lab["key"]: lab["value"] for lab in
                  project.kestra.execution(execution["id"])["labels"]}
        assert labels["backfill"] == "true" and labels["kestra-ops.backfill-id"] == backfill_id
    [entry] = project.changes()
    assert entry["action"] == "flow-backfill" and entry["after"] == 5
    assert entry["executions"] == [e["id"] for e in body["executions"]]
    if OPENAPI.is_file():  # scheduleDate and labels as the OpenAPI document defines them
        contract = OpenAPIContract(OPENAPI)
        assert {contract.check_exchange(x.request, x.response)
                for x in project.kestra.exchanges} == {"flow", "createExecution"}


def test_dry_run_lists_the_windows_and_creates_nothing(project: Project):
    project.kestra.add_flow(HOURLY)

    result = project.run("flows", "backfill", "company.data", "ingest", "--env", "dev",
                         "--start", "2026-01-01T00:30:00Z", "--end", "2026-01-01T03:00:00Z",
                         "--dry-run")

    assert result.exit_code == 0, result.output
    assert "triggers: hourly: 0 * * * * (UTC)" in result.output
    assert table(result.stdout, "windows") == [  # the end is exclusive
        {"window": "2026-01-01T01:00:00+00:00", "trigger": "hourly"},
        {"window": "2026-01-01T02:00:00+00:00", "trigger": "hourly"}]
    assert "2026-01-01T03:00" not in result.output
    assert "dry run: 2 window(s), none created" in result.output
    assert backfills(project) == [] and project.kestra.executions == {}


def test_more_than_max_executions_is_refused_even_with_yes(project: Project):
    project.kestra.add_flow(HOURLY)
    args = ("flows", "backfill", "company.data", "ingest", "--env", "dev",
            "--start", "2026-01-01", "--end", "2026-01-06", "--yes")

    refused = project.run(*args)

    assert refused.exit_code == 1
    assert "120 executions, more than --max-executions 100: none created" in refused.output
    assert backfills(project) == []
    allowed = project.run(*args, "--max-executions", "120", "-o", "json")
    assert allowed.exit_code == 0 and len(json.loads(allowed.output)["executions"]) == 120


def test_no_confirmation_no_execution(project: Project):
    project.kestra.add_flow(HOURLY)

    result = project.run("flows", "backfill", "company.data", "ingest", "--env", "dev",
                         "--start", "2026-01-01T00:00:00Z", "--end", "2026-01-01T02:00:00Z")

    assert result.exit_code == 2  # no terminal to answer on, and no --yes
    assert "  2026-01-01T00:00:00+00:00  (hourly)" in result.stderr  # what would be created
    assert "error: refusing to create backfill executions of company.data.ingest without " \
           "--yes (stdin is not a terminal); nothing was changed" in result.stderr
    assert backfills(project) == [] and project.changes() == []


def test_legacy_schedule_with_timezone_and_inputs(project: Project):
    project.kestra.add_flow(LEGACY + "inputs:\n  - id: day\n    type: STRING\n")

    result = project.run("flows", "backfill", "company.data", "legacy", "--env", "dev",
                         "--start", "2026-03-28T00:00", "--end", "2026-03-31T00:00", "--yes",
                         "--trigger", "nightly")

    assert result.exit_code == 0, result.output
    dates = [c.query["scheduleDate"][0] for c in backfills(project)]
    # 02:00 does not exist on the 29th (DST): croniter fires at 03:00, as cron does
    assert dates == ["2026-03-28T02:00:00+01:00", "2026-03-29T03:00:00+02:00",
                     "2026-03-30T02:00:00+02:00"]
    assert all(b'name="day"' in c.body and b"yesterday" in c.body for c in backfills(project))


def test_the_window_can_be_passed_as_an_input(project: Project):
    project.kestra.add_flow(LEGACY + "inputs:\n  - id: day\n    type: STRING\n"
                            "  - id: since\n    type: DATETIME\n    required: false\n")

    result = project.run("flows", "backfill", "company.data", "legacy", "--env", "dev",
                         "--start", "2026-01-10T00:00:00Z", "--end", "2026-01-12T00:00:00Z",
                         "--input", "since={window}", "--input", "day=today", "--yes")

    assert result.exit_code == 0, result.output
    bodies = [c.body for c in backfills(project)]
    assert len(bodies) == 2
    assert b"2026-01-10T02:00:00+01:00" in bodies[0] and b"2026-01-11T02:00:00+01:00" in bodies[1]
    assert all(b"today" in b and b"yesterday" not in b for b in bodies)  # --input wins
    bad = project.run("flows", "backfill", "company.data", "legacy", "--env", "dev",
                      "--start", "2026-01-10", "--end", "2026-01-11", "--input", "novalue")
    assert bad.exit_code == 2 and "NAME=VALUE" in bad.output


def test_flows_without_a_schedule_and_bad_ranges_are_invalid_input(project: Project):
    project.kestra.add_flow(flow("plain", "company.data"))
    project.kestra.add_flow(HOURLY)

    no_schedule = project.run("flows", "backfill", "company.data", "plain", "--env", "dev",
                              "--start", "2026-01-01", "--end", "2026-01-02", "--dry-run")
    backwards = project.run("flows", "backfill", "company.data", "ingest", "--env", "dev",
                            "--start", "2026-01-02", "--end", "2026-01-01", "--dry-run")
    missing = project.run("flows", "backfill", "company.data", "nope", "--env", "dev",
                          "--start", "2026-01-01", "--end", "2026-01-02", "--dry-run")

    assert no_schedule.exit_code == 2
    assert "has no enabled Schedule trigger" in no_schedule.output
    assert backwards.exit_code == 2 and "is not after --start" in backwards.output
    assert missing.exit_code == 1 and "not found" in missing.output


def test_schedules_skip_disabled_and_other_triggers_unless_named():
    from kestra_ops.workflows.flows.yamldoc import parse_flow

    doc = parse_flow(HOURLY, "f.yaml").data
    assert [s.id for s in schedules(doc)] == ["hourly"]
    assert [s.id for s in schedules(doc, "off")] == ["off"]
    assert schedules(doc, "hook") == []


def test_windows_follow_croniter_semantics():
    start, end = "2026-01-01T00:00:00Z", "2026-01-01T00:02:00Z"
    every_30s = windows(Schedule("s", "*/30 * * * * *", with_seconds=True), start, end)
    assert [w.second for w in every_30s] == [0, 30, 0, 30]
    daily = windows(Schedule("d", "@daily"), "2026-01-01", "2026-01-04")
    assert daily == [dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc).astimezone(daily[0].tzinfo)
                     for d in (1, 2, 3)]
    with pytest.raises(InvalidInput, match="is not valid"):
        windows(Schedule("bad", "61 * * * *"), start, end)
    with pytest.raises(InvalidInput, match="unknown timezone"):
        windows(Schedule("tz", "@hourly", timezone="Mars/Olympus"), start, end)
    with pytest.raises(InvalidInput, match="more than 10 windows"):
        windows(Schedule("m", "* * * * *"), "2026-01-01", "2026-01-02", cap=10)
