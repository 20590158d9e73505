"""The catalogue's renamed and removed configuration keys as plain data: what the values rule
(:mod:`kestra_ops.upgrades.values_rules`) reads on every ``values validate``, cold included.

The typed catalogue (:func:`kestra_ops.upgrades.catalogue.load`) builds and checks every entry
(migrations, flow detectors, notes) in frozen dataclasses: ~4 ms of a cold ``values validate``
(a fresh CI machine, ``--no-cache``) for facts the rule never reads. This reads the same file,
``catalogue.yaml``, and keeps only the release ranges and their ``removed``/``renamed`` config
entries. The facts stay in that one file; ``tests/unit/test_upgrade_config_view.py`` holds this
view equal to the typed one for every release. A file this view cannot read as it expects is
handed to :func:`~kestra_ops.upgrades.catalogue.load`, which names what is wrong (exit 2).
"""

from __future__ import annotations

import functools
from pathlib import Path

from kestra_ops.upgrades.version import try_parse

TYPE_CHECKING = False  # (not typing.TYPE_CHECKING: importing typing costs ~2 ms a run)
if TYPE_CHECKING:
    from kestra_ops.upgrades.version import Version

CATALOGUE = Path(__file__).with_name("catalogue.yaml")
KEPT = ("removed", "renamed")  # the changes a values file can be judged by


class Change(tuple):
    """One renamed or removed key of a release: (release name, key, change, to, what, source,
    unsure); a tuple, so the view costs no class machinery at import."""

    __slots__ = ()
    release = property(lambda self: self[0])
    key = property(lambda self: self[1])
    change = property(lambda self: self[2])
    to = property(lambda self: self[3])
    what = property(lambda self: self[4])
    source = property(lambda self: self[5])
    unsure = property(lambda self: self[6])

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.key.split("."))


class View:
    """The release ranges (sorted by first version) and, per release, its kept changes."""

    __slots__ = ("releases",)

    def __init__(self, releases: list[tuple[Version, Version, tuple[Change, ...]]]):
        self.releases = tuple(sorted(releases, key=lambda r: r[0]))

    def known(self, v: Version) -> bool:
        return any(first <= v <= last for first, last, _ in self.releases)

    def changes_upto(self, v: Version):
        """The kept changes of every release whose first version is <= ``v``, oldest first."""
        for first, _, changes in self.releases:
            if first > v:
                break
            yield from changes


@functools.lru_cache(maxsize=4)
def view(path: str | None = None) -> View:
    """The view of the catalogue at ``path`` (default: the packaged one), read once a process."""
    import yaml

    where = Path(path) if path else CATALOGUE
    try:
        data = yaml.load(_kept_lines(where.read_text(encoding="utf-8")),
                         Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        return View([_release(entry) for entry in data["releases"]])
    except Exception:  # noqa: BLE001 - any surprise: the checked loader names the fault
        from kestra_ops.upgrades.catalogue import load

        cat = load(str(where))  # raises CatalogueError naming the entry
        # the checked loader accepts what this view could not read: take the typed entries
        return View([(r.first, r.last, tuple(
            Change((r.name, c.key, c.change, c.to, c.what, c.source, c.unsure))
            for c in r.config if c.change in KEPT)) for r in cat.releases])


def _kept_lines(text: str) -> str:
    """The catalogue cut down to ``releases:``, each entry's ``version`` and its ``config`` block
    (in the file's block layout: entries at indent 2, their keys at 4): the YAML parse is then
    of ~1 KB, not the whole file. Any other layout is a ValueError (the checked loader then
    reads the file)."""
    lines = text.splitlines()
    start = lines.index("releases:")
    kept, inside = ["releases:"], False
    for line in lines[start + 1:]:
        bare = line.lstrip(" ")
        indent = len(line) - len(bare)
        if not bare or (bare.startswith("#") and indent <= 4):
            if inside:
                kept.append(line)  # a blank line may be part of a block scalar
            continue
        if indent == 0:
            break  # the next top-level key
        if indent == 2:
            if not line.startswith("  - version: "):
                raise ValueError(line)
            kept.append(line)
            inside = False
        elif indent == 4:
            inside = line == "    config:"
            if inside:
                kept.append(line)
            elif bare.startswith("config"):
                raise ValueError(line)  # a flow-style or otherwise unexpected config entry
        elif indent < 4:
            raise ValueError(line)
        elif inside:
            kept.append(line)
    return "\n".join(kept) + "\n"


def _release(entry: dict) -> tuple[Version, Version, tuple[Change, ...]]:
    name = str(entry["version"])
    first, _, last = name.partition("..")
    v1, v2 = try_parse(first), try_parse(last or first)
    if v1 is None or v2 is None:
        raise ValueError(name)
    kept = []
    for c in entry.get("config") or ():
        if c["change"] in KEPT:
            if c["change"] == "renamed" and not c.get("to"):
                raise ValueError("to")
            kept.append(Change((name, c["key"], c["change"], str(c.get("to") or ""), c["what"],
                                "; ".join(_sources(c)), str(c.get("unsure") or ""))))
    return v1, v2, tuple(kept)


def _sources(c: dict) -> list[str]:
    """As the typed loader joins them: ``source`` (one) or ``sources`` (a list)."""
    found = c.get("sources") if c.get("sources") is not None else c.get("source")
    if isinstance(found, str):
        return [found]
    if isinstance(found, list) and found and all(isinstance(s, str) for s in found):
        return found
    raise ValueError("source")
