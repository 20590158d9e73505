"""The values rule's plain view of the catalogue (upgrades/config_view.py) says what the typed
catalogue says: the same release ranges and the same renamed/removed keys with their facts; a
catalogue the view cannot read is judged by the checked loader (the entry named, exit 2); and
a cold ``values validate`` does not build the typed catalogue."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kestra_ops.upgrades import catalogue, config_view
from kestra_ops.upgrades.version import parse


def test_the_view_equals_the_typed_catalogue():
    cat = catalogue.load()
    seen = config_view.view()
    assert [(f, l) for f, l, _ in seen.releases] == [(r.first, r.last) for r in cat.releases]
    for (_, _, changes), release in zip(seen.releases, cat.releases):
        typed = [(release.name, c.key, c.change, c.to, c.what, c.source, c.unsure)
                 for c in release.config if c.change in ("removed", "renamed")]
        assert [tuple(c) for c in changes] == typed
    renamed = [c for _, _, cs in seen.releases for c in cs if c.change == "renamed"]
    assert renamed and all(c.to for c in renamed)  # the packaged catalogue has one at least


def test_known_and_changes_upto_follow_the_ranges():
    seen = config_view.view()
    cat = catalogue.load()
    for text in ("1.0.0", "1.3.2", "1.3.22", "2.0.0", "2.0.8", "0.9.0", "1.3.99", "9.0.0"):
        v = parse(text)
        assert seen.known(v) == cat.known(v), text
        typed = [c.key for r in cat.releases if r.first <= v for c in r.config
                 if c.change in ("removed", "renamed")]
        assert [c.key for c in seen.changes_upto(v)] == typed, text
    assert [c.key for c in seen.changes_upto(parse("1.3.22"))] != \
        [c.key for c in seen.changes_upto(parse("2.0.8"))]


@pytest.mark.parametrize("text, named", [
    ("format: 1\ntargets: ['1.3']\nreleases:\n  - version: nope\n", "nope"),
    ("format: 1\ntargets: ['1.3']\nreleases:\n  - version: '1.3.0'\n    reversible: false\n"
     "    reversibility: r\n    sources: [s]\n    config:\n      - key: a.b\n"
     "        change: renamed\n        what: w\n        source: s\n", "needs 'to'"),
    ("format: 1\nreleases: [", "cannot read"),
])
def test_a_catalogue_the_view_cannot_read_is_named_by_the_checked_loader(tmp_path, text, named):
    bad = tmp_path / "catalogue.yaml"
    bad.write_text(text)
    with pytest.raises(catalogue.CatalogueError) as err:
        config_view.view(str(bad))
    assert named in str(err.value) and str(bad) in str(err.value)


def test_a_cold_validate_does_not_build_the_typed_catalogue(tmp_path):
    code = ("import sys\n"
            "from kestra_ops.entry import values_validate\n"
            "code = values_validate(['values', 'validate', '--no-cache', "
            "'values/production.yaml'])\n"
            "print('typed' if 'kestra_ops.upgrades.catalogue' in sys.modules else 'plain', code)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=config_view.CATALOGUE.parents[2], env={"PATH": "/usr/bin:/bin",
                         "HOME": str(tmp_path), "KESTRA_OPS_NO_CACHE": "1"})
    assert out.stdout.split()[-2:] == ["plain", "0"], out.stdout + out.stderr


def test_another_layout_of_a_valid_catalogue_gives_the_same_view(tmp_path):
    """The cut-down read knows the file's block layout only; a catalogue written otherwise
    (flow style here) is read by the checked loader, with the same answer."""
    import json

    import yaml

    data = yaml.safe_load(catalogue.CATALOGUE.read_text())
    flow = tmp_path / "catalogue.yaml"
    flow.write_text("format: 1\ntargets: " + json.dumps(data["targets"]) + "\nreleases:\n" +
                    "".join(f"  - {json.dumps(r)}\n" for r in data["releases"]))
    assert [tuple(c) for _, _, cs in config_view.view(str(flow)).releases for c in cs] == \
        [tuple(c) for _, _, cs in config_view.view().releases for c in cs]
