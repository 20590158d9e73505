"""The broken-values corpus: every file declares the rule, line and exit code it must produce.

tests/corpus/values/*.yaml are copies of the merged production (or dev) values with one
deliberate defect; the first line says what `kestra-ops values validate` must report:

    # expect: rule=kestra/jdbc-url line=157 exit=1 env=production

Each file is run through the CLI (JSON output) and through the library, and must give that exit
code and a finding of that rule at that line, in that file, with no traceback. Hostile inputs
that are too big or binary to commit (50 MB, non-UTF-8, deep nesting) are made at test time.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kestra_ops.values.catalog import RULES
from kestra_ops.values.findings import exit_code
from kestra_ops.values.validate import validate_layers
from kestra_ops.yamlio import YamlLoadError, load_yaml_file
from tests.helpers_values import in_repo  # noqa: F401 - a fixture
from tests.helpers_values import (CORPUS_DIR, ENVIRONMENTS, REPO_ROOT, VALUES_DIR, all_output,
                                  assert_no_traceback, corpus_files, findings_of,
                                  parse_expectation, rel, run_cli, validate_json)

CORPUS = corpus_files()
SCHEMA = REPO_ROOT / "charts" / "kestra" / "values.schema.json"
# rules that need input the corpus cannot hold as a committed text file (made at test time
# below), or that only chart lint reports
NOT_IN_CORPUS = {"io/unreadable", "yaml/too-large", "yaml/encoding", "yaml/too-deep",
                 "schema/other"}


def _matching(findings: list[dict], rule: str, line: int, file: str) -> list[dict]:
    return [f for f in findings if f["rule"] == rule and f["line"] == line and f["file"] == file]


def _describe(findings: list[dict]) -> str:
    return "\n".join(f"{f['file']}:{f['line']}:{f['col']} {f['severity']} {f['rule']}: "
                     f"{f['message']}" for f in findings) or "(no findings)"


# --------------------------------------------------------------------------- the corpus itself

def test_corpus_has_at_least_40_files():
    assert len(CORPUS) >= 40, [p.name for p in CORPUS]


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_corpus_header_is_well_formed(path: Path):
    exp = parse_expectation(path)
    assert exp.rule in RULES, f"{path.name}: rule {exp.rule!r} is not in the catalog"
    assert exp.exit in (0, 1, 2)
    assert exp.env in ENVIRONMENTS
    assert exp.line >= 1
    # the declared line exists in the file (a line past the end is a typo in the header)
    assert exp.line <= max(1, path.read_bytes().count(b"\n"))


def test_corpus_covers_every_values_rule():
    """Every YAML, values, schema and Kestra rule has at least one corpus file (the rest are
    exercised by the generated cases below)."""
    declared = {parse_expectation(p).rule for p in CORPUS}
    families = ("yaml/", "values/", "schema/", "kestra/")
    wanted = {r for r in RULES if r.startswith(families)} - NOT_IN_CORPUS
    assert wanted - declared == set()


def test_corpus_files_have_distinct_defects():
    """No two corpus files are identical (each holds its own defect)."""
    bodies = {}
    for path in CORPUS:
        body = path.read_bytes().split(b"\n", 2)[-1]
        assert body not in bodies, f"{path.name} repeats {bodies.get(body)}"
        bodies[body] = path.name


# --------------------------------------------------------------------------- through the CLI

@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_corpus_cli(path: Path, in_repo):
    exp = parse_expectation(path)
    result = run_cli("values", "validate", "--env", exp.env, "--output", "json", rel(path))
    assert_no_traceback(result)
    findings = findings_of(result)
    assert result.exit_code == exp.exit, _describe(findings) + "\n" + all_output(result)
    assert _matching(findings, exp.rule, exp.line, rel(path)), (
        f"expected {exp.rule} at {rel(path)}:{exp.line}, got:\n{_describe(findings)}")


# --------------------------------------------------------------------------- through the library

@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_corpus_library(path: Path, in_repo):
    from kestra_ops.settings import load_config
    from kestra_ops.workflows.values import validate_files

    exp = parse_expectation(path)
    config = load_config(REPO_ROOT / "kestra-ops.yaml")
    reports = validate_files(config, [Path(rel(path))], exp.env)
    assert len(reports) == 1
    findings = [f.to_dict() for f in reports[0].findings]
    assert exit_code(reports) == exp.exit, _describe(findings)
    assert reports[0].unreadable == (exp.exit == 2)
    assert _matching(findings, exp.rule, exp.line, rel(path)), _describe(findings)


# --------------------------------------------------------------------------- the good files

def test_values_files_validate_clean(in_repo):
    files = sorted(rel(p) for p in VALUES_DIR.glob("*.yaml"))
    assert {"values/base.yaml", "values/production.yaml"} <= set(files)
    result, findings = validate_json(*files)
    assert result.exit_code == 0, _describe(findings)
    assert findings == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_values_validate_clean(env: str, in_repo):
    result, findings = validate_json(env=env)
    assert result.exit_code == 0, _describe(findings)
    assert findings == []


def test_corpus_base_is_the_clean_production_render(tmp_path, in_repo):
    """The corpus files start from the rendered production values: that render is clean on its
    own, so each corpus finding comes from the file's one defect."""
    result = run_cli("values", "render", "--env", "production")
    assert result.exit_code == 0, all_output(result)
    path = tmp_path / "rendered.yaml"
    path.write_text(result.stdout)
    result, findings = validate_json(str(path), env="production")
    assert result.exit_code == 0, _describe(findings)
    assert findings == []


# --------------------------------------------------------------------------- severity by env

def test_plaintext_secret_is_an_error_in_production_and_a_warning_in_dev(in_repo):
    """The very same file: plaintext secrets fail production and only warn in dev."""
    path = Path(rel(CORPUS_DIR / "plaintext-secret-production.yaml"))
    exp = parse_expectation(path)
    by_env = {}
    for env in ("production", "dev"):
        report = validate_layers([path], SCHEMA, env)
        hits = [f for f in report.findings
                if f.rule == "kestra/plaintext-secret" and f.location.line == exp.line]
        assert len(hits) == 1, report.findings
        by_env[env] = hits[0].severity
    assert by_env == {"production": "error", "dev": "warning"}


def test_driver_mismatch_is_only_a_warning(in_repo):
    result, findings = validate_json(rel(CORPUS_DIR / "jdbc-driver-mismatch.yaml"),
                                     env="production")
    assert result.exit_code == 0
    assert [f["severity"] for f in findings] == ["warning"]


# ------------------------------------------------------------------------- generated hostile input

def test_50mb_file_is_refused_before_parsing(tmp_path, in_repo, monkeypatch):
    big = tmp_path / "huge.yaml"
    with open(big, "wb") as fh:  # sparse: 50 MB without writing 50 MB
        fh.write(b"image:\n  repository: kestra/kestra\n")
        fh.truncate(50 * 1024 * 1024)
    start = time.monotonic()
    result, findings = validate_json(str(big), env="production")
    assert time.monotonic() - start < 2.0
    assert result.exit_code == 2
    assert [f["rule"] for f in findings] == ["yaml/too-large"]
    assert findings[0]["line"] == 1

    # the size is checked before any byte is read
    def no_read(self, *a, **k):
        raise AssertionError(f"{self} was read")

    monkeypatch.setattr(Path, "read_bytes", no_read)
    monkeypatch.setattr(Path, "read_text", no_read)
    monkeypatch.setattr(Path, "open", no_read)
    with pytest.raises(YamlLoadError) as err:
        load_yaml_file(big)
    assert err.value.rule == "yaml/too-large"


def test_non_utf8_byte_is_reported_at_its_line(tmp_path, in_repo):
    good = (CORPUS_DIR / "schema-enum.yaml").read_bytes().split(b"\n", 2)[2]
    good = good.replace(b"pullPolicy: Sometimes", b"pullPolicy: IfNotPresent")
    lines = good.split(b"\n")
    target = next(i for i, line in enumerate(lines) if line.startswith(b"  repository: kestra/"))
    lines[target] = b"  repository: kestra/kes\xfftra"  # latin-1 mangled
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"\n".join(lines))
    result, findings = validate_json(str(path), env="production")
    assert result.exit_code == 2
    assert [(f["rule"], f["line"], f["col"]) for f in findings] == [
        ("yaml/encoding", target + 1, len(b"  repository: kestra/kes") + 1)]
    assert "0xff" in findings[0]["message"]


def test_utf8_bom_is_accepted(tmp_path, in_repo):
    src = (VALUES_DIR / "base.yaml").read_bytes()
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + src)
    result, findings = validate_json(str(path))
    assert result.exit_code == 0, _describe(findings)


@pytest.mark.parametrize("text", [
    "a: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "a: " + "{b: " * 20_000 + "1" + "}" * 20_000 + "\n",
    "a: " + "[" * 100_000 + "\n",  # and never closed
    "a:\n  " + "- " * 5_000 + "1\n",
    "".join(" " * i + f"k{i}:\n" for i in range(400)) + " " * 400 + "v: 1\n",
], ids=["flow-seq", "flow-map", "flow-unclosed", "block-seq", "block-map"])
def test_deep_nesting_is_refused_fast(text: str, tmp_path, in_repo):
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    start = time.monotonic()
    result, findings = validate_json(str(path), env="production")
    elapsed = time.monotonic() - start
    assert result.exit_code == 2, _describe(findings)
    assert [f["rule"] for f in findings] in (["yaml/too-deep"], ["yaml/syntax"])
    assert elapsed < 2.0, f"took {elapsed:.1f}s"


def test_zero_byte_file_is_empty(tmp_path, in_repo):
    path = tmp_path / "empty.yaml"
    path.write_bytes(b"")
    result, findings = validate_json(str(path), env="production")
    assert result.exit_code == 2
    assert [(f["rule"], f["line"]) for f in findings] == [("values/empty", 1)]
