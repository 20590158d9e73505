"""Validate values: YAML safety, values.schema.json, then Kestra's rules, with file:line:col."""

from __future__ import annotations

from pathlib import Path

TYPE_CHECKING = False  # (not typing.TYPE_CHECKING: importing typing costs ~2 ms a run)

from kestra_ops.values.findings import Finding, Report, json_path
from kestra_ops.yamlio import Location, YamlLoadError

if TYPE_CHECKING:  # rules compile many regexes, merging reads YAML: only when validating for real
    from typing import Iterable
    from kestra_ops.values.merge import Merged
    from kestra_ops.values.rules import Hit

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def validate_merged(merged: Merged, schema_path: Path, env: str | None, target: str) -> Report:
    """Findings for already-merged values."""
    from kestra_ops.redact import mask_text
    from kestra_ops.values.rules_platform import run_rules
    from kestra_ops.values.schema import schema_hits

    report = Report(target=target, env=env, layers=list(merged.layers))
    if merged.data is None or merged.data == {}:
        loc = Location(merged.layers[0] if merged.layers else target)
        report.findings.append(Finding("values/empty", "error", "no values at all", "$", loc,
                                       "start from values/base.yaml"))
        report.unreadable = True
        return report
    values = merged.plain
    kestra = run_rules(values, env)
    # a Kestra warning must not hide a schema error on the same node (Helm refuses the values)
    claimed = {hit.path for hit in kestra if hit.severity == "error"}
    hits: list[Hit] = [h for h in schema_hits(values, schema_path) if not _claimed(h, claimed)]
    hits.extend(kestra)
    seen = set()
    secrets = _secrets(values)
    for hit in hits:
        key = (hit.rule, hit.path, hit.message)
        if key in seen:
            continue
        seen.add(key)
        # the last net: no message or hint echoes a literal secret (a schema message quoting
        # a URL that holds a password, a rule quoting a value)
        report.findings.append(Finding(hit.rule, hit.severity, mask_text(hit.message, secrets),
                                       json_path(hit.path), merged.locate(hit.path),
                                       mask_text(hit.hint, secrets) if hit.hint else hit.hint))
    report.findings.sort(key=lambda f: (f.location.file, f.location.line, f.location.col,
                                        SEVERITY_ORDER.get(f.severity, 3), f.rule))
    return report


def _secrets(values) -> list[str]:
    """The literal secrets of ``values`` long enough to mask in free text (a 3-character
    password would mask every word it happens to be part of; the rule names its path)."""
    from kestra_ops.redact import secret_values

    return [s for s in secret_values(values) if len(s) >= 4]


def _claimed(hit: Hit, claimed: set[tuple]) -> bool:
    """A Kestra rule already explains this missing or unknown key (a legacy key, a missing
    datasource section); type and range errors are always reported."""
    if hit.rule == "schema/unknown-key":
        return hit.path in claimed
    n = len(hit.path)
    return hit.rule == "schema/required" and any(c[:n] == hit.path for c in claimed)


def validate_layers(paths: Iterable[Path], schema_path: Path, env: str | None,
                    target: str | None = None, sets: Iterable[str] = (),
                    use_cache: bool = True) -> Report:
    """Load ``paths`` as layers (base first), merge them, validate the result (cached)."""
    from kestra_ops import cache
    from kestra_ops.upgrades.values_rules import CATALOGUE_FILE

    paths, sets = list(paths), list(sets)
    target = target or (str(paths[-1]) if paths else "<values>")
    # the version rule reads the version catalogue: an edited catalogue is a miss
    key = cache.content_key((env or "", target, *sets), [*paths, schema_path, CATALOGUE_FILE]) \
        if use_cache else None
    hit = cache.get_json("validate", key)
    if hit is not None:
        try:
            return Report.from_dict(hit)
        except (KeyError, TypeError):
            pass  # a corrupt entry is a miss
    try:
        from kestra_ops.values.merge import load_layers

        merged = load_layers(paths, sets, fast=True)
    except YamlLoadError as err:
        return Report(target=target, env=env, layers=[str(p) for p in paths], unreadable=True,
                      findings=[Finding(err.rule, "error", err.detail, "$", err.location,
                                        err.hint)])
    report = validate_merged(merged, schema_path, env, target)
    cache.put_json("validate", key, report.to_dict())
    return report
