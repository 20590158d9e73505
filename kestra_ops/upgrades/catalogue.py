"""The version catalogue (``catalogue.yaml`` beside this module) as typed, checked data.

The file is data, not code: one entry per Kestra release (or range of patch releases sharing
the same facts) saying what moving INTO it from the release before entails:

* ``reversible`` (and ``reversibility``, why): can the previous version run again on what this
  one leaves behind (database schema and data)? Unknown is ``false`` (conservative);
* ``requires_from``: the oldest version this release may be reached from (a jump from further
  back goes through that version first);
* ``migrations``: ``automatic`` (run by Kestra at start-up) or ``manual`` (a ``kestra migrate``
  command run as a Kubernetes Job with the target image, ``before-release`` with Kestra stopped,
  or ``after-release``);
* ``config`` (keys renamed or removed), ``chart`` (ports, probes, health authentication) and
  ``flows`` (flow syntax removed or renamed, with a detector and the replacement);
* ``sources`` everywhere: every fact names Kestra's docs, release notes or source file; where
  the sources disagree or are unsure the entry says so in ``unsure``.

:func:`load` reads and checks it once per process (a malformed catalogue is a bug of this
package: :class:`CatalogueError`, exit 2 with the entry named). The path between two versions is
:mod:`kestra_ops.upgrades.path`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from kestra_ops.errors import InvalidInput
from kestra_ops.upgrades.version import Version, parse, try_parse

CATALOGUE = Path(__file__).with_name("catalogue.yaml")
KINDS = ("automatic", "manual")
WHEN = ("before-release", "after-release", "start-up")
CONFIG_CHANGES = ("removed", "renamed", "default-changed")
FLOW_CHANGES = ("removed", "renamed", "changed")
DETECTORS = ("type", "path", "pebble")  # exactly one, with its modifiers:
MODIFIERS = {"type": ("property", "without"), "path": ("value", "with"), "pebble": ()}


class CatalogueError(InvalidInput):
    """The catalogue file is malformed (a packaging bug; names the entry)."""


@dataclass(frozen=True)
class Migration:
    """A migration a release needs: automatic at start-up, or a manual command."""

    id: str
    kind: str  # automatic | manual
    what: str
    source: str
    command: tuple[str, ...] = ()  # manual: the container command (e.g. /app/kestra migrate run)
    when: str = "start-up"  # manual: before-release | after-release
    stop: bool = False  # manual: every Kestra instance is stopped before it runs
    unsure: str = ""

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "what": self.what, "command": list(self.command),
                "when": self.when, "stop": self.stop, "source": self.source,
                "unsure": self.unsure or None}


@dataclass(frozen=True)
class ConfigChange:
    """A server configuration key a release renames, removes or changes the default of."""

    key: str  # dotted application-YAML key under the chart's values (kestra.server.basicAuth)
    change: str  # removed | renamed | default-changed
    what: str
    source: str
    to: str = ""  # renamed: the new key
    unsure: str = ""

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.key.split("."))

    def to_dict(self) -> dict:
        return {"key": self.key, "change": self.change, "to": self.to or None, "what": self.what,
                "source": self.source, "unsure": self.unsure or None}


@dataclass(frozen=True)
class Note:
    """A chart change (ports, probes) or a behaviour change without new syntax."""
    id: str
    what: str
    source: str
    unsure: str = ""

    def to_dict(self) -> dict:
        return {"id": self.id, "what": self.what, "source": self.source,
                "unsure": self.unsure or None}


@dataclass(frozen=True)
class FlowChange:
    """Flow syntax a release removes, renames or changes, with its detector."""

    id: str
    change: str  # removed | renamed | changed
    what: str
    detect: dict  # one of DETECTORS -> its argument (see kestra_ops.upgrades.flow_rules)
    replacement: str
    source: str
    automatic: bool | None = None  # the kestra-migrate tool rewrites it (None: unknown)
    unsure: str = ""

    def to_dict(self) -> dict:
        return {"id": self.id, "change": self.change, "what": self.what, "detect": self.detect,
                "replacement": self.replacement, "automatic": self.automatic,
                "source": self.source, "unsure": self.unsure or None}


@dataclass(frozen=True)
class Release:
    """One release (or a range of patch releases) and what moving into it entails."""

    first: Version  # the release (or the first of a range of patch releases)
    last: Version  # == first for a single release
    reversible: bool
    reversibility: str
    sources: tuple[str, ...]
    requires_from: Version | None = None
    migrations: tuple[Migration, ...] = ()
    config: tuple[ConfigChange, ...] = ()
    chart: tuple[Note, ...] = ()
    flows: tuple[FlowChange, ...] = ()
    behaviour: tuple[Note, ...] = ()
    unsure: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}..{self.last}"

    def covers(self, v: Version) -> bool:
        return self.first <= v <= self.last


@dataclass(frozen=True)
class Catalogue:
    """Every catalogued release, sorted, and the supported target lines."""

    releases: tuple[Release, ...]  # sorted, non-overlapping
    targets: tuple[str, ...]  # the supported target lines, e.g. ("1.3", "2.0")
    image: dict = field(default_factory=dict)
    path: str = str(CATALOGUE)

    def release(self, v: Version) -> Release | None:
        return next((r for r in self.releases if r.covers(v)), None)

    def known(self, v: Version) -> bool:
        return self.release(v) is not None

    def latest(self, line: str) -> Version | None:
        found = [r.last for r in self.releases if r.last.line == line]
        return max(found) if found else None

    def lines(self) -> list[str]:
        return sorted({r.first.line for r in self.releases},
                      key=lambda s: tuple(int(p) for p in s.split(".")))

    def between(self, after: Version, upto: Version) -> list[Release]:
        """The entries with a release in (after, upto]."""
        return [r for r in self.releases if r.last > after and r.first <= upto]

    def target(self, text: str) -> Version:
        """``--to``: a version of a supported line (``1.3``, a line, means its latest release)."""
        text = str(text).strip()
        if text in self.targets:
            return self.latest(text)
        v = parse(text, "target version")
        if v.line not in self.targets:
            raise InvalidInput(f"target {v} is not on a supported line (supported: "
                               f"{', '.join(self.targets)})")
        if not self.known(v):
            raise InvalidInput(f"target {v} is not in the version catalogue (known on "
                               f"{v.line}: up to {self.latest(v.line)})",
                               hint=f"the catalogue is {self.path}")
        return v


@functools.lru_cache(maxsize=4)
def load(path: str | None = None) -> Catalogue:
    import yaml

    where = Path(path) if path else CATALOGUE
    try:
        data = yaml.load(where.read_text(encoding="utf-8"),
                         Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError) as err:
        raise CatalogueError(f"{where}: cannot read the version catalogue: {err}") from None
    return parse_catalogue(data, str(where))


def parse_catalogue(data, where: str = "<catalogue>") -> Catalogue:
    if not isinstance(data, dict) or data.get("format") != 1:
        raise CatalogueError(f"{where}: not a version catalogue (format: 1)")
    releases = []
    for i, entry in enumerate(data.get("releases") or []):
        releases.append(_release(entry, f"{where}: releases[{i}]"))
    releases.sort(key=lambda r: r.first)
    for a, b in zip(releases, releases[1:]):
        if b.first <= a.last:
            raise CatalogueError(f"{where}: releases {a.name} and {b.name} overlap")
    targets = tuple(str(t) for t in data.get("targets") or ())
    cat = Catalogue(tuple(releases), targets, dict(data.get("image") or {}), where)
    for t in targets:
        if cat.latest(t) is None:
            raise CatalogueError(f"{where}: target line {t} has no release")
    for r in releases:
        if r.requires_from is not None and not cat.known(r.requires_from):
            raise CatalogueError(f"{where}: {r.name} requires_from {r.requires_from}, which is "
                                 "not in the catalogue")
    return cat


def _need(entry: dict, key: str, where: str, kind=str):
    value = entry.get(key)
    if not isinstance(value, kind) or (kind is str and not value.strip()):
        raise CatalogueError(f"{where}: '{key}' is missing or not a {kind.__name__}")
    return value


def _sources(entry: dict, where: str) -> tuple[str, ...]:
    raw = entry.get("sources", entry.get("source"))
    found = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    if not found or not all(isinstance(s, str) and s.strip() for s in found):
        raise CatalogueError(f"{where}: every fact needs its source")
    return tuple(found)


def _release(entry, where: str) -> Release:
    if not isinstance(entry, dict):
        raise CatalogueError(f"{where}: not a mapping")
    name = str(_need(entry, "version", where))
    first, _, last = name.partition("..")
    v1, v2 = try_parse(first), try_parse(last or first)
    if v1 is None or v2 is None or v2 < v1:
        raise CatalogueError(f"{where}: version {name!r} is not a version or a range a..b")
    where = f"{where} ({name})"
    reversible = entry.get("reversible")
    if not isinstance(reversible, bool):
        raise CatalogueError(f"{where}: 'reversible' must be true or false (unknown is false)")
    req = entry.get("requires_from")
    return Release(
        first=v1, last=v2, reversible=reversible,
        reversibility=_need(entry, "reversibility", where), sources=_sources(entry, where),
        requires_from=parse(str(req), f"{where}: requires_from") if req is not None else None,
        migrations=tuple(_migration(m, f"{where} migrations[{i}]")
                         for i, m in enumerate(entry.get("migrations") or [])),
        config=tuple(_config(c, f"{where} config[{i}]")
                     for i, c in enumerate(entry.get("config") or [])),
        chart=tuple(_note(c, f"{where} chart[{i}]") for i, c in enumerate(entry.get("chart") or [])),
        behaviour=tuple(_note(c, f"{where} behaviour[{i}]")
                        for i, c in enumerate(entry.get("behaviour") or [])),
        flows=tuple(_flow(f, f"{where} flows[{i}]")
                    for i, f in enumerate(entry.get("flows") or [])),
        unsure=tuple(str(u) for u in entry.get("unsure") or ()))


def _note(c, where: str) -> Note:
    if not isinstance(c, dict):
        raise CatalogueError(f"{where}: not a mapping")
    return Note(_need(c, "id", where), _need(c, "what", where), "; ".join(_sources(c, where)),
                str(c.get("unsure") or ""))


def _migration(m, where: str) -> Migration:
    if not isinstance(m, dict):
        raise CatalogueError(f"{where}: not a mapping")
    kind = _need(m, "kind", where)
    if kind not in KINDS:
        raise CatalogueError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    command = m.get("command") or []
    when = m.get("when") or ("before-release" if kind == "manual" else "start-up")
    if when not in WHEN:
        raise CatalogueError(f"{where}: when {when!r} is not one of {', '.join(WHEN)}")
    if kind == "manual" and (not command or not all(isinstance(c, str) for c in command)):
        raise CatalogueError(f"{where}: a manual migration needs its command (a list)")
    return Migration(_need(m, "id", where), kind, _need(m, "what", where),
                     "; ".join(_sources(m, where)), tuple(command), when, bool(m.get("stop")),
                     str(m.get("unsure") or ""))


def _config(c, where: str) -> ConfigChange:
    if not isinstance(c, dict):
        raise CatalogueError(f"{where}: not a mapping")
    change = _need(c, "change", where)
    if change not in CONFIG_CHANGES:
        raise CatalogueError(f"{where}: change {change!r} is not one of "
                             f"{', '.join(CONFIG_CHANGES)}")
    if change == "renamed" and not c.get("to"):
        raise CatalogueError(f"{where}: a renamed key needs 'to'")
    return ConfigChange(_need(c, "key", where), change, _need(c, "what", where),
                        "; ".join(_sources(c, where)), str(c.get("to") or ""),
                        str(c.get("unsure") or ""))


def _flow(f, where: str) -> FlowChange:
    if not isinstance(f, dict):
        raise CatalogueError(f"{where}: not a mapping")
    change = _need(f, "change", where)
    if change not in FLOW_CHANGES:
        raise CatalogueError(f"{where}: change {change!r} is not one of {', '.join(FLOW_CHANGES)}")
    detect = f.get("detect")
    kinds = [k for k in DETECTORS if isinstance(detect, dict) and k in detect]
    if len(kinds) != 1 or not set(detect) <= {kinds[0], *MODIFIERS[kinds[0]]}:
        raise CatalogueError(f"{where}: 'detect' needs exactly one of {', '.join(DETECTORS)} "
                             "(with its modifiers)")
    if kinds[0] == "pebble":
        import re

        try:
            re.compile(detect["pebble"])
        except (re.error, TypeError) as err:
            raise CatalogueError(f"{where}: pebble pattern: {err}") from None
    automatic = f.get("automatic")
    return FlowChange(_need(f, "id", where), change, _need(f, "what", where), dict(detect),
                      _need(f, "replacement", where), "; ".join(_sources(f, where)),
                      automatic if isinstance(automatic, bool) else None,
                      str(f.get("unsure") or ""))
