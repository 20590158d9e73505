"""Offline flow checks: the corpus (every `# expect: RULE` line, nothing else), the fast parser
against the safe loader, the blacklist from an environment's values, ZIP targets."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from kestra_ops.settings import load_config
from kestra_ops.values.findings import exit_code
from kestra_ops.workflows.flows.local import (DEFAULT_BLACKLIST, Blacklist, blacklist_for,
                                              check_flows, plugin_types, read_flows,
                                              validate_local)
from kestra_ops.workflows.flows.yamldoc import _fast_parse, _safe_parse, flow_text, parse_flow

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "flows"
EXPECT = re.compile(r"#\s*expect:\s*(\S+)")
LOG = "  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"


def expected(folder: Path) -> set[tuple[str, int, str]]:
    out = set()
    for path in sorted(folder.rglob("*.y*ml")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            m = EXPECT.search(line)
            if m:
                out.add((path.name, number, m.group(1)))
    return out


def test_bad_corpus_reports_exactly_the_expected_rules_at_their_lines():
    result = validate_local(CORPUS / "bad")
    got = {(Path(f.location.file).name, f.location.line, f.rule)
           for f in result.report.findings if f.severity == "error"}
    want = expected(CORPUS / "bad")
    assert len(want) >= 20
    assert got == want
    assert exit_code([result.report]) == 2  # tabs / duplicate key: files that are not flows


def test_nested_blacklisted_types_name_their_path_and_column():
    result = validate_local(CORPUS / "bad" / "nested-blacklist.yaml")
    hits = {f.path: f for f in result.report.findings if f.rule == "flows/blacklisted-type"}
    assert "$.tasks[0].tasks[0].tasks[0].then[0].type" in hits
    assert "$.tasks[1].cases.a[0].type" in hits
    assert "$.pluginDefaults[0].type" in hits
    deep = hits["$.tasks[0].tasks[0].tasks[0].else[0].type"]
    assert (deep.location.line, deep.location.col) == (20, 23)  # the quoted value's quote
    assert "io.kestra.plugin.docker.Build" in deep.message
    assert "'io.kestra.plugin.docker.*'" in deep.message


def test_good_corpus_and_example_flows_are_clean():
    for folder in (CORPUS / "good", CORPUS.parents[2] / "flows"):
        result = validate_local(folder)
        assert result.report.findings == [], folder
        assert len(result.flows) >= 3
        assert exit_code([result.report]) == 0


@pytest.mark.parametrize("path", sorted((CORPUS / "good").rglob("*.y*ml")), ids=lambda p: p.name)
def test_fast_parser_agrees_with_the_safe_loader(path):
    text = path.read_text()
    fast_data, fast_pos = _fast_parse(text, path.name)
    safe_data, safe_pos = _safe_parse(text, path.name)
    assert fast_data == safe_data
    for key, _ in plugin_types(fast_data):
        assert fast_pos[key + ("",)] == safe_pos[key + ("",)]  # (line, col) of the value
        assert fast_pos[key] == safe_pos[key]  # of the key


def test_yaml_words_are_read_as_kestra_reads_them():
    flow = parse_flow("id: a\nnamespace: b\nlabels:\n  x: on\n  y: yes\n  d: 2026-01-01\n"
                      "  n: 3\n  t: true\ntasks: []\n", "f.yaml")
    assert flow.data["labels"] == {"x": "on", "y": "yes", "d": "2026-01-01", "n": 3, "t": True}


def test_hostile_yaml_falls_back_to_the_safe_loader_rules(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n"
        for i in range(6))
    (tmp_path / "bomb.yaml").write_text(bomb)
    (tmp_path / "latin1.yaml").write_bytes("id: caf\xe9\n".encode("latin-1"))
    flows, findings = read_flows(tmp_path)
    assert flows == []
    assert {(Path(f.location.file).name, f.rule) for f in findings} == {
        ("bomb.yaml", "yaml/alias-bomb"), ("latin1.yaml", "yaml/encoding")}


def test_blacklist_comes_from_the_environments_merged_values(tmp_path):
    (tmp_path / "base.yaml").write_text("kestra:\n  plugins:\n    blacklist:\n"
                                        '      - "io.kestra.plugin.docker.*"\n')
    (tmp_path / "dev.yaml").write_text("kestra:\n  plugins:\n    blacklist:\n"
                                       '      - "io.kestra.plugin.scripts.shell.*"\n'
                                       '      - "io.kestra.plugn.jdbc.*"\n')
    (tmp_path / "kestra-ops.yaml").write_text(
        "environments:\n  dev: {values: [base.yaml, dev.yaml]}\n  prod: {values: [base.yaml]}\n")
    config = load_config(tmp_path / "kestra-ops.yaml")
    dev, notes = blacklist_for(config.environment("dev"))
    assert dev.patterns == ("io.kestra.plugin.scripts.shell.*", "io.kestra.plugn.jdbc.*")
    assert dev.origin.endswith("dev.yaml:3")  # lists replace: the overlay's list wins
    assert [n.rule for n in notes] == ["kestra/plugin-blacklist-typo"]  # values rules, reused
    assert notes[0].severity == "warning" and notes[0].location.line == 5
    flow = parse_flow("id: s\nnamespace: company.team\ntasks:\n  - id: sh\n"
                      "    type: io.kestra.plugin.scripts.shell.Commands\n", "s.yaml")
    assert [f.rule for f in check_flows([flow], dev)] == ["flows/blacklisted-type"]
    prod, _ = blacklist_for(config.environment("prod"))
    assert check_flows([flow], prod) == []
    assert blacklist_for(None)[0].patterns == DEFAULT_BLACKLIST


def test_blacklist_globs_match_like_the_values_rules():
    black = Blacklist(("io.kestra.plugin.docker.*", "io.kestra.plugin.core.log.?og"), "test")
    assert black.match("io.kestra.plugin.docker.Run") == "io.kestra.plugin.docker.*"
    assert black.match("io.kestra.plugin.docker.sub.Thing") == "io.kestra.plugin.docker.*"
    assert black.match("io.kestra.plugin.core.log.Log") == "io.kestra.plugin.core.log.?og"
    assert black.match("io.kestra.plugin.dockerish.Run") is None
    assert black.match("io.kestra.plugin.docker") is None
    assert black.match("io.kestra.plugin.docker", prefix=True) == "io.kestra.plugin.docker.*"
    assert black.match("IO.KESTRA.PLUGIN.DOCKER.RUN") is None  # case-sensitive, like Java names


def test_namespace_and_id_rules():
    def rules(ns: str, fid: str = "f") -> list[str]:
        flow = parse_flow(f"id: {fid}\nnamespace: {ns}\ntasks:\n{LOG}", "x.yaml")
        return [f.rule for f in check_flows([flow], Blacklist((), "none"))]

    assert rules("company.team") == rules("company.data-eng.v2") == rules("a") == []
    for bad in ("Company.team", "company_team", "company..team", "company.", "-company",
                "company.-team", "company team"):
        assert rules(f'"{bad}"') == ["flows/namespace"], bad
    assert rules("company.team", "x" * 101) == ["flows/id"]


def test_a_zip_export_is_a_target(tmp_path):
    archive = tmp_path / "flows.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("company.team-a.yml", f"id: a\nnamespace: company.team\ntasks:\n{LOG}")
        zf.writestr("company.team-b.yml", "id: b\nnamespace: company.team\ntasks:\n"
                    "  - id: d\n    type: io.kestra.plugin.docker.Run\n")
        zf.writestr("notes.txt", "not a flow")
    result = validate_local(archive)
    assert [f.id for f in result.flows] == ["a", "b"]
    [hit] = result.report.findings
    assert hit.rule == "flows/blacklisted-type"
    assert str(hit.location).endswith("flows.zip!company.team-b.yml:5:11")


def test_flow_text_ignores_line_endings_and_outer_blank_lines():
    assert flow_text("\nid: a\r\nnamespace: b\r\n\n") == flow_text("id: a\nnamespace: b")
    assert flow_text("id: a\n") != flow_text("id: b\n")


@pytest.mark.parametrize("blacklist, rules", [
    ('["io..kestra", "**", " io.kestra.plugin.docker.*"]',
     ["kestra/plugin-blacklist-glob"] * 3 + ["kestra/plugin-blacklist-docker"]),
    ("[]", ["kestra/plugin-blacklist-missing"]),
    ("null", ["kestra/plugin-blacklist-missing"]),
    ('"io.kestra.plugin.docker.*"', ["kestra/plugin-blacklist-glob"]),
    ("[1, null]", ["kestra/plugin-blacklist-docker"] + ["kestra/plugin-blacklist-glob"] * 2),
    ('["io.kestra.plugin.scripts.*"]', ["kestra/plugin-blacklist-docker"]),
], ids=["invalid-globs", "empty", "null", "not-a-list", "not-strings", "no-docker"])
def test_the_blacklist_fails_closed_outside_dev(tmp_path, blacklist, rules):
    """Whatever the list says, production blacklists docker, and a wrong list is an error."""
    (tmp_path / "v.yaml").write_text(f"kestra:\n  plugins:\n    blacklist: {blacklist}\n")
    (tmp_path / "kestra-ops.yaml").write_text(
        "environments:\n  dev: {values: [v.yaml]}\n  production: {values: [v.yaml]}\n")
    config = load_config(tmp_path / "kestra-ops.yaml")
    docker = parse_flow("id: d\nnamespace: company.team\ntasks:\n  - id: d\n"
                        "    type: io.kestra.plugin.docker.Run\n", "d.yaml")
    for env, severity in (("production", "error"), ("dev", "warning")):
        black, notes = blacklist_for(config.environment(env))
        assert black.patterns, env
        if env == "production" or not black.origin.startswith("kestra.plugins"):
            # dev keeps a valid list as it is (docker may be allowed there)
            assert [f.rule for f in check_flows([docker], black)] == ["flows/blacklisted-type"]
        wanted = [r for r in rules if env == "production" or r != "kestra/plugin-blacklist-docker"]
        assert sorted(n.rule for n in notes) == sorted(wanted), (env, notes)
        assert {n.severity for n in notes} <= {severity}, env


@pytest.mark.parametrize("limit, value, words", [
    ("MAX_FLOW_FILES", 3, "more than 3 flow files"),
    ("MAX_TOTAL_BYTES", 250, "more than 250 bytes in all"),
    ("MAX_WALK_ENTRIES", 5, "more than 5 entries below it"),
])
def test_a_flows_directory_has_a_total_budget(tmp_path, monkeypatch, limit, value, words):
    from kestra_ops.errors import InvalidInput
    from kestra_ops.workflows.flows import files

    for i in range(4):
        (tmp_path / f"f{i}.yaml").write_text(f"id: f{i}\nnamespace: company.team\ntasks:\n{LOG}")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("x")
    assert len(validate_local(tmp_path).flows) == 4
    monkeypatch.setattr(files, limit, value)
    with pytest.raises(InvalidInput) as err:
        validate_local(tmp_path)
    assert words in str(err.value) and "refused as a whole" in str(err.value)
    assert err.value.exit_code == 2


def test_a_zip_target_has_the_same_budget(tmp_path, monkeypatch):
    from kestra_ops.errors import InvalidInput
    from kestra_ops.workflows.flows import files

    archive = tmp_path / "flows.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(4):
            zf.writestr(f"f{i}.yml", f"id: f{i}\nnamespace: company.team\ntasks:\n{LOG}")
    monkeypatch.setattr(files, "MAX_FLOW_FILES", 3)
    with pytest.raises(InvalidInput, match="more than 3 flow files"):
        validate_local(archive)
