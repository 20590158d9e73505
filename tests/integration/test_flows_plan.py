"""`flows validate --env`, `flows plan` and `flows export` against the fake Kestra server: diffs,
exit codes, and exports (ZIP and directory) that `flows apply` takes back unchanged."""

from __future__ import annotations

import json
import zipfile

from tests.helpers_flows import Project, flow, kestra, project, table  # noqa: F401


def test_plan_lists_each_change_with_a_diff_and_exits_3_on_changes(project: Project):
    project.write("new.yaml", flow("new"))
    project.write("changed.yaml", flow("changed", message="after"))
    project.write("same.yaml", flow("same"))
    for source in (flow("changed", message="before"), flow("same"), flow("gone")):
        project.kestra.add_flow(source)
    project.kestra.clear_log()

    result = project.run("flows", "plan", "flows", "--env", "dev", "--detailed-exitcode")

    assert result.exit_code == 3, result.output
    out = result.stdout
    assert table(out) == [  # the changes, in flow order; unchanged flows are not listed
        {"action": "update", "flow": "company.team.changed", "revision": "1",
         "file": "flows/changed.yaml", "note": ""},
        {"action": "create", "flow": "company.team.new", "revision": "",
         "file": "flows/new.yaml", "note": ""},
        {"action": "delete", "flow": "company.team.gone", "revision": "1", "file": "",
         "note": ""}]
    assert "  update company.team.changed:\n    --- server company.team/changed (revision 1)" \
        in out  # each diff in a block titled by its change
    assert '    -    message: "before"' in out and '    +    message: "after"' in out
    assert "company.team.same" not in out
    assert out.rstrip().endswith(
        "flows plan dev: 1 to create, 1 to update, 1 to delete, 1 unchanged")
    assert [r for r in project.kestra.calls() if r.method != "GET"] == []  # plan only reads
    assert project.run("flows", "plan", "flows", "--env", "dev").exit_code == 0


def test_plan_json_and_no_changes(project: Project):
    project.write("a.yaml", flow("a"))
    project.kestra.add_flow(flow("a").rstrip("\n") + "\n\n\n")  # blank lines are not a change

    result = project.run("flows", "plan", "flows", "--env", "dev", "--detailed-exitcode",
                         "-o", "json")

    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["changed"] is False and body["counts"]["unchanged"] == 1
    assert (body["command"], body["env"], body["exit_code"]) == ("flows plan", "dev", 0)
    assert [s["status"] for s in body["steps"]] == ["pass", "pass"]
    assert body["changes"][0] | {"diff": ""} == {"action": "unchanged", "namespace": "company.team",
                                                 "id": "a", "file": "flows/a.yaml", "revision": 1,
                                                 "diff": "", "note": None}


def test_plan_diff_masks_literal_secrets_but_not_references(project: Project):
    extra = "variables:\n  password: hunter2-Secret\n  token: \"{{ secret('API_TOKEN') }}\"\n"
    project.write("s.yaml", flow("s", extra=extra))
    project.kestra.add_flow(flow("s", extra=extra.replace("hunter2-Secret", "old-Secret1")))

    result = project.run("flows", "plan", "flows", "--env", "dev")

    assert result.exit_code == 0
    assert "hunter2" not in result.output and "old-Secret1" not in result.output
    assert '-  password: ****** (sha256:' in result.output  # a change shows, the value never
    assert "+  password: ****** (sha256:" in result.output
    assert "   token: \"{{ secret('API_TOKEN') }}\"" in result.output  # a reference stays
    assert [(r["action"], r["flow"]) for r in table(result.stdout)] == [
        ("update", "company.team.s")]


def test_plan_refuses_invalid_flows(project: Project):
    project.write("bad.yaml", "id: x\nnamespace: Bad.NS\ntasks:\n  - id: a\n    type: "
                  "io.kestra.plugin.docker.Run\n")

    result = project.run("flows", "plan", "flows", "--env", "dev", "--detailed-exitcode")

    assert result.exit_code == 1
    assert "flows/bad.yaml:2:12: error flows/namespace" in result.output
    assert "flows/bad.yaml:5:11: error flows/blacklisted-type" in result.output
    assert project.kestra.calls() == []


def test_validate_with_env_adds_the_servers_constraints_per_file(project: Project):
    project.write("ok.yaml", flow("ok"))
    project.write("dup-task.yaml", "id: dup\nnamespace: company.team\nlabels:\n  Bad Key: x\n"
                  "tasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: m\n")

    offline = project.run("flows", "validate", "flows")
    assert offline.exit_code == 0 and project.kestra.calls() == []
    online = project.run("flows", "validate", "flows", "--env", "dev", "-o", "json")

    assert online.exit_code == 1
    [report] = json.loads(online.output)["reports"]
    [finding] = report["findings"]
    assert finding["rule"] == "flows/server" and finding["file"] == "flows/dup-task.yaml"
    assert "Invalid label key 'Bad Key'" in finding["message"]
    assert finding["line"] == 3  # the labels key
    [call] = project.kestra.calls("POST", r"/flows/validate$")  # both flows, one request
    assert call.body.count(b"\n---\n") == 1


def test_export_to_a_directory_round_trips_through_apply_unchanged(project: Project):
    sources = [flow("a"), flow("b", "company.data", extra="description: |\n  two\n  lines\n"),
               flow("c", "company.data.sub", message="--- dashes ---")]
    for source in sources:
        project.kestra.add_flow(source)

    exported = project.run("flows", "export", "--env", "dev", "--to", "exported")

    assert exported.exit_code == 0, exported.output
    assert "3 flow(s) to exported (directory)" in exported.output
    files = sorted(p.relative_to(project.root / "exported").as_posix()
                   for p in (project.root / "exported").rglob("*.yaml"))
    assert files == ["company.data.sub/c.yaml", "company.data/b.yaml", "company.team/a.yaml"]
    assert (project.root / "exported/company.team/a.yaml").read_text() == sources[0]
    project.kestra.clear_log()
    plan = project.run("flows", "plan", "exported", "--env", "dev", "--detailed-exitcode")
    apply = project.run("flows", "apply", "exported", "--env", "dev", "--yes", "--prune",
                        "--detailed-exitcode")
    assert plan.exit_code == 0 and "3 unchanged" in plan.output
    assert apply.exit_code == 0 and "no changes (3 unchanged)" in apply.output
    assert [r for r in project.kestra.calls() if r.method != "GET"] == []


def test_export_to_a_zip_is_the_servers_archive_and_round_trips(project: Project):
    for source in (flow("a"), flow("b"), flow("x", "other.ns")):
        project.kestra.add_flow(source)

    whole = project.run("flows", "export", "--env", "dev", "--to", "all.zip")
    team = project.run("flows", "export", "--env", "dev", "--to", "out/team.zip",
                       "--namespace", "company.team")

    assert whole.exit_code == 0 and team.exit_code == 0, team.output
    with zipfile.ZipFile(project.root / "all.zip") as zf:
        assert len(zf.namelist()) == 3
    with zipfile.ZipFile(project.root / "out/team.zip") as zf:
        assert sorted(zf.namelist()) == ["company.team-a.yml", "company.team-b.yml"]
    apply = project.run("flows", "apply", "all.zip", "--env", "dev", "--yes",
                        "--detailed-exitcode")
    assert apply.exit_code == 0 and "no changes (3 unchanged)" in apply.output
    project.kestra.add_flow(flow("b", message="changed on the server"))
    restore = project.run("flows", "apply", "out/team.zip", "--env", "dev", "--yes")
    assert restore.exit_code == 0 and "0 created, 1 updated" in restore.output
    assert "changed on the server" not in project.server_flows()[("company.team", "b")]


def test_validate_with_an_unreachable_server_still_shows_the_offline_findings(project: Project,
                                                                              monkeypatch):
    from tests.fakes.loopback import free_ports

    project.write("ok.yaml", flow("ok"))
    project.write("bad.yaml", flow("bad", "Company.Team"))
    monkeypatch.setenv("KESTRA_OPS_KESTRA_URL", f"http://127.0.0.1:{free_ports(1)[0]}")

    result = project.run("flows", "validate", "flows", "--env", "dev", "-o", "json")

    assert result.exit_code == 1, result.output  # the server could not be asked
    doc = json.loads(result.stdout)
    assert doc["status"] == "fail" and doc["exit_code"] == 1
    assert doc["message"].startswith("flows validate: the server's validate endpoint failed: ")
    [report] = doc["reports"]
    assert [f["rule"] for f in report["findings"]] == ["flows/namespace"]  # offline, kept
    text = project.run("flows", "validate", "flows", "--env", "dev")
    assert text.exit_code == 1
    assert "flows/bad.yaml:3:12: error flows/namespace" in text.stdout
    assert text.stdout.rstrip().splitlines()[-1] == doc["message"]
