"""The values rule of the version catalogue: keys the image's Kestra version no longer reads.

The chart renders the values' ``kestra:`` and ``datasources:`` sections into Kestra's
application.yml as they are, so a catalogue ``config`` key (``kestra.server.basicAuth``) is the
same dotted path in the merged values. :func:`version_rule` (one of
:data:`kestra_ops.values.rules_platform.ALL_RULES`) reads ``image.tag``:

* empty: the chart's appVersion, which the rules do not know: no finding;
* not a version (``latest``): ``kestra/unpinned-image`` (warning), nothing else can be checked;
* a version the catalogue does not know: ``kestra/unknown-version`` (warning);
* for every catalogue release up to that version, each ``removed`` / ``renamed`` config key
  set in the values: ``kestra/removed-key`` / ``kestra/renamed-key`` (error, at that key).

:func:`version_hits` is the same check for a version given outright (``upgrade plan``'s target).
The catalogue is read only when a tag names a version, through its plain view
(:mod:`kestra_ops.upgrades.config_view`: one YAML parse, not the typed catalogue's ~4 ms);
``values validate``'s cache key holds :data:`CATALOGUE_FILE`, so an edited catalogue is never
answered from the cache.
"""

from __future__ import annotations

from pathlib import Path

TYPE_CHECKING = False  # (not typing.TYPE_CHECKING: importing typing costs ~2 ms a run)
if TYPE_CHECKING:
    from typing import Iterator

    from kestra_ops.upgrades.catalogue import Catalogue
    from kestra_ops.upgrades.version import Version
    from kestra_ops.values.rules import Context, Hit

# the file kestra_ops.upgrades.catalogue.load() reads (its CATALOGUE), named here without
# importing the loader or the rules: the validate cache hashes it on every run, hits included
CATALOGUE_FILE = Path(__file__).with_name("catalogue.yaml")
TAG = ("image", "tag")
SHOWN = 60  # characters of a tag quoted in a message


def version_rule(ctx: Context) -> Iterator[Hit]:
    """The findings of the image tag's Kestra version on the merged values (see the module)."""
    from kestra_ops.upgrades.version import split_tag
    from kestra_ops.values.rules import Hit

    tag = ctx.get(TAG, None)
    if not isinstance(tag, str) or not tag.strip():
        return  # empty: the chart's appVersion; another type: the schema reports it
    shown = tag.strip()[:SHOWN]
    found = split_tag(tag)
    if found is None:
        yield Hit("kestra/unpinned-image", "warning",
                  f"image.tag {shown!r} is not a Kestra version: the version catalogue's rules "
                  "cannot check these values, and the chart configures itself for its "
                  "appVersion whatever the image runs", TAG,
                  "pin the version, e.g. v1.3.2 or v2.0.8 (a flavour suffix such as -slim is "
                  "fine)")
        return
    yield from _hits(ctx, found[0], f"image.tag {shown} runs Kestra {found[0]}")


def version_hits(values: dict, version: Version, env: str | None) -> list[Hit]:
    """What :func:`version_rule` finds in ``values`` when Kestra runs ``version`` (whatever the
    values' own image tag says): the check of a target version before an upgrade."""
    from kestra_ops.values.rules import Context

    ctx = Context(values if isinstance(values, dict) else {}, env)
    return list(_hits(ctx, version, f"the target is Kestra {version}"))


def _hits(ctx: Context, version: Version, subject: str) -> Iterator[Hit]:
    from kestra_ops.upgrades.config_view import view
    from kestra_ops.values.rules import MISSING, Hit

    cat = view(str(CATALOGUE_FILE))  # the file the validate cache hashes
    if not cat.known(version):
        from kestra_ops.upgrades.catalogue import load

        yield Hit("kestra/unknown-version", "warning",
                  f"Kestra {version} is not in the version catalogue: chart and values support "
                  f"unverified ({subject})", TAG, _known(load()))
    seen = set()
    for change in cat.changes_upto(version):
        if change.key in seen:
            continue
        value = ctx.get(change.path)
        if value is MISSING or value is None:  # null deletes a key when layering
            continue
        seen.add(change.key)
        unsure = f" (unsure: {change.unsure})" if change.unsure else ""
        if change.change == "renamed":
            yield Hit("kestra/renamed-key", "error",
                      f"{change.key} is renamed {change.to} in Kestra {change.release} "
                      f"({subject}): {change.what} [source: {change.source}]",
                      change.path, f"rename it to {change.to}{unsure}")
        else:
            yield Hit("kestra/removed-key", "error",
                      f"{change.key} is removed in Kestra {change.release} ({subject}): "
                      f"{change.what} [source: {change.source}]",
                      change.path, f"remove {change.key}{unsure}")


def _known(cat: Catalogue) -> str:
    latest = [f"{line}: up to {cat.latest(line)}" for line in cat.targets]
    return (f"use a catalogued version ({'; '.join(latest)}), or add this one to "
            f"{CATALOGUE_FILE.name} with its sources")
