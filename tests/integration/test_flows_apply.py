"""`kestra-ops flows apply` against the fake Kestra server: writes in namespace batches, and every
guard (prune, max-deletions, protected namespaces, invalid flows, explicit delete=false)."""

from __future__ import annotations

import io

import pytest

from tests.fakes.kestra_contract import OpenAPIContract
from tests.helpers_flows import OPENAPI, Project, flow, kestra, project, table  # noqa: F401

SYNC = r"/api/v1/main/flows/(?!validate$|bulk$|import$|search$)[^/]+$"


def seed(project: Project, *sources: str) -> None:
    for source in sources:
        project.kestra.add_flow(source)


def test_apply_writes_per_namespace_with_delete_false_and_logs_each_change(project):
    for i in range(12):
        project.write(f"company.team/f{i}.yaml", flow(f"f{i}", "company.team"))
        project.write(f"company.data/g{i}.yaml", flow(f"g{i}", "company.data"))
    project.write("company.team/changed.yaml", flow("changed", message="new"))
    project.write("company.team/same.yaml", flow("same"))
    seed(project, flow("changed", message="old"), flow("same"))
    project.kestra.clear_log()

    result = project.run("flows", "apply", "flows", "--env", "dev", "--yes",
                         "--detailed-exitcode")

    assert result.exit_code == 3, result.output
    assert "applied: 24 created, 1 updated, 0 deleted" in result.output
    rows = table(result.stdout)
    assert len(rows) == 25 and {"action": "update", "flow": "company.team.changed",
                                "revision": "1 -> 2", "file": "flows/company.team/changed.yaml",
                                "note": ""} in rows
    server = project.server_flows()
    assert len(server) == 26
    assert "new" in server[("company.team", "changed")]
    syncs = project.kestra.calls("POST", SYNC)
    assert sorted(r.path for r in syncs) == ["/api/v1/main/flows/company.data",
                                             "/api/v1/main/flows/company.team"]
    assert all(r.query["delete"] == ["false"] for r in syncs)
    assert project.kestra.calls("POST", r"/flows$") == []  # no request per flow
    assert project.kestra.calls("DELETE") == []
    assert len(project.kestra.calls()) <= 8  # searches, export, validate, two syncs
    log = project.changes()
    assert len(log) == 25
    update = next(e for e in log if e["action"] == "flow-update")
    assert (update["target"], update["before"], update["after"]) == (
        "flow company.team.changed", 1, 2)
    assert {e["action"] for e in log} == {"flow-create", "flow-update"}

    again = project.run("flows", "apply", "flows", "--env", "dev", "--yes",
                        "--detailed-exitcode")
    assert again.exit_code == 0 and "no changes (26 unchanged)" in again.output


def test_without_prune_nothing_is_deleted(project):
    project.write("a.yaml", flow("a"))
    seed(project, flow("a"), flow("orphan"), flow("elsewhere", "company.other"))
    project.kestra.clear_log()

    result = project.run("flows", "apply", "flows", "--env", "dev", "--yes",
                         "--max-deletions", "5")

    assert result.exit_code == 0, result.output
    assert table(result.stdout) == [{"action": "delete", "flow": "company.team.orphan",
                                     "revision": "1", "file": "", "note": "kept (--prune not given)"}]
    assert set(project.server_flows()) == {("company.team", "a"), ("company.team", "orphan"),
                                           ("company.other", "elsewhere")}
    assert project.writes() == []


def test_prune_deletes_one_by_one_and_never_other_namespaces(project):
    project.write("a.yaml", flow("a"))
    seed(project, flow("orphan"), flow("elsewhere", "company.other"),
         flow("child", "company.team.sub"))
    project.kestra.clear_log()

    result = project.run("flows", "apply", "flows", "--env", "dev", "--yes", "--prune")

    assert result.exit_code == 0, result.output
    assert "applied: 1 created, 0 updated, 1 deleted" in result.output
    assert set(project.server_flows()) == {("company.team", "a"), ("company.other", "elsewhere"),
                                           ("company.team.sub", "child")}
    assert [r.path for r in project.kestra.calls("DELETE")] == [
        "/api/v1/main/flows/company.team/orphan"]
    assert project.kestra.calls("POST", r"/flows/bulk$") == []
    assert [e["action"] for e in project.changes()] == ["flow-create", "flow-delete"]


def test_too_many_deletions_refuse_the_whole_apply_before_any_write(project):
    project.write("new.yaml", flow("new"))
    project.write("changed.yaml", flow("changed", message="v2"))
    seed(project, flow("changed", message="v1"), *(flow(f"old{i}") for i in range(11)))
    before = project.server_flows()
    project.kestra.clear_log()

    default = project.run("flows", "apply", "flows", "--env", "dev", "--yes", "--prune")
    explicit = project.run("flows", "apply", "flows", "--env", "dev", "--yes", "--prune",
                           "--max-deletions", "3")

    assert default.exit_code == 1
    assert "11 deletion(s) planned, more than --max-deletions 10: nothing written" in \
        default.output
    assert explicit.exit_code == 1 and "more than --max-deletions 3" in explicit.output
    assert project.writes() == []
    assert project.server_flows() == before
    assert project.changes() == []
    allowed = project.run("flows", "apply", "flows", "--env", "dev", "--yes", "--prune",
                          "--max-deletions", "11")
    assert allowed.exit_code == 0 and "1 created, 1 updated, 11 deleted" in allowed.output


def test_protected_namespaces_are_never_pruned(project):
    project.write("team/a.yaml", flow("a"))
    project.write("core/b.yaml", flow("b", "company.core"))
    project.write("child/c.yaml", flow("c", "company.core.jobs"))
    seed(project, flow("a"), flow("b", "company.core"), flow("c", "company.core.jobs"),
         flow("team-orphan"), flow("core-orphan", "company.core"),
         flow("jobs-orphan", "company.core.jobs"))
    project.kestra.clear_log()

    result = project.run("flows", "apply", "flows", "--env", "dev", "--yes", "--prune",
                         "--protect", "company.core")

    assert result.exit_code == 0, result.output
    assert [r.path for r in project.kestra.calls("DELETE")] == [
        "/api/v1/main/flows/company.team/team-orphan"]
    assert ("company.core", "core-orphan") in project.server_flows()
    assert ("company.core.jobs", "jobs-orphan") in project.server_flows()
    rows = {r["flow"]: r for r in table(result.stdout)}
    assert rows["company.core.jobs.jobs-orphan"]["note"] == \
        "kept (protected namespace: --protect company.core)"
    assert rows["company.core.core-orphan"]["note"].startswith("kept (protected namespace")
    assert (rows["company.team.team-orphan"]["action"], rows["company.team.team-orphan"]["note"]) \
        == ("delete", "")  # deleted


def test_a_flow_failing_offline_checks_stops_everything_before_any_request(project):
    project.write("good.yaml", flow("good"))
    bad = project.write("nested/bad.yaml", flow("bad", extra="") + (
        "  - id: group\n    type: io.kestra.plugin.core.flow.Sequential\n    tasks:\n"
        "      - id: sh\n        type: io.kestra.plugin.scripts.shell.Commands\n"
        "        commands: [ls]\n"))

    result = project.run("flows", "apply", "flows", "--env", "dev", "--yes")

    assert result.exit_code == 1
    assert f"{bad.relative_to(project.root)}:12:15: error flows/blacklisted-type" in \
        result.output  # the env's blacklist (values.yaml), not only docker
    assert "nothing written" in result.output
    assert project.kestra.calls() == []


def test_a_flow_the_server_refuses_stops_everything_before_any_write(project):
    project.write("a.yaml", flow("a"))
    bad = project.write("z.yaml", flow("z", task_type="com.example.plugin.Unknown"))
    seed(project, flow("a", message="old"))
    project.kestra.clear_log()

    result = project.run("flows", "apply", "flows", "--env", "dev", "--yes")

    assert result.exit_code == 1
    assert f"{bad.relative_to(project.root)}:5:5: error flows/server: server: tasks[0]: " \
           "Invalid type: com.example.plugin.Unknown" in result.output
    assert "the server refused 1 flow(s): nothing written" in result.output
    assert project.kestra.calls("POST", r"/flows/validate$")
    assert project.writes() == []
    assert "old" in project.server_flows()[("company.team", "a")]


def test_flows_containing_triple_dashes_are_written_alone(project):
    text = flow("dashes", message="--- a rule ---")
    project.write("dashes.yaml", text)
    project.write("plain.yaml", flow("plain"))

    result = project.run("flows", "apply", "flows", "--env", "dev", "--yes")

    assert result.exit_code == 0, result.output
    assert project.server_flows()[("company.team", "dashes")].strip() == text.strip()
    [create] = project.kestra.calls("POST", r"/flows$")
    assert b"--- a rule ---" in create.body
    [sync] = project.kestra.calls("POST", SYNC)
    assert b"--- a rule" not in sync.body and sync.query["delete"] == ["false"]


def test_no_confirmation_no_write(project):
    project.write("a.yaml", flow("a"))

    result = project.run("flows", "apply", "flows", "--env", "dev", input="y\n")

    assert result.exit_code == 2  # no terminal to answer on, and no --yes
    assert "create    company.team.a  [flows/a.yaml]" in result.stderr  # what would be done
    assert "error: refusing to apply flows to dev without --yes (stdin is not a terminal); " \
           "nothing was changed" in result.stderr
    assert project.writes() == [] and project.server_flows() == {}
    assert project.changes() == []


class Terminal(io.BytesIO):
    """Someone at a terminal, typing ``answer``."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("answer, code", [(b"n\n", 1), (b"y\n", 0)])
def test_on_a_terminal_the_answer_decides(project, answer, code):
    project.write("a.yaml", flow("a"))

    result = project.run("flows", "apply", "flows", "--env", "dev", input=Terminal(answer))

    assert result.exit_code == code, result.output
    assert "apply these changes to dev? [y/N]" in result.stderr
    if code:
        assert "flows apply dev: aborted, nothing written" in result.stdout
        assert project.writes() == [] and project.server_flows() == {}
    else:
        assert "flows apply dev: applied: 1 created, 0 updated, 0 deleted" in result.stdout
        assert set(project.server_flows()) == {("company.team", "a")}


def test_a_failed_batch_says_what_was_done_and_what_to_do(project):
    project.write("a/a.yaml", flow("a", "company.a"))
    project.write("b/b.yaml", flow("b", "company.b"))
    project.kestra.fail_next(1, status=500, method="POST", path=r"/flows/company\.b$")

    result = project.run("flows", "apply", "flows", "--env", "dev", "--yes")

    assert result.exit_code == 1
    assert "1 change(s) made before the failure" in result.output
    assert "  FAIL        write 2 flow(s) in 2 namespace(s)" in result.stdout  # where it stopped
    assert table(result.stdout) == [{"action": "create", "flow": "company.a.a", "revision": "1",
                                     "file": "flows/a/a.yaml", "note": ""}]  # what was done
    assert "kestra-ops flows plan" in result.output
    assert set(project.server_flows()) == {("company.a", "a")}
    assert [e.get("status") for e in project.changes()] == [None, "failed"]


def test_every_request_of_an_apply_follows_the_openapi_document(project):
    if not OPENAPI.is_file():
        pytest.skip("../shared/kestra-openapi.yml not found")
    contract = OpenAPIContract(OPENAPI)
    project.write("a.yaml", flow("a", message="new"))
    project.write("dashes.yaml", flow("dashes", message="---"))
    seed(project, flow("a"), flow("gone"))
    project.kestra.clear_log()

    result = project.run("flows", "apply", "flows", "--env", "dev", "--yes", "--prune")

    assert result.exit_code == 0, result.output
    operations = {contract.check_exchange(x.request, x.response) for x in project.kestra.exchanges}
    assert operations >= {"searchFlows", "exportFlowsByQuery", "validateFlows",
                          "updateFlowsInNamespace", "createFlow", "deleteFlow"}
