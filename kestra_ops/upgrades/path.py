"""The path from a running Kestra version to a target: the steps (hops) an upgrade takes.

Patch releases are cumulative (a start-up applies every pending migration), so one step goes as
far as it can; a release with ``requires_from`` further on than where the step starts splits the
path there (e.g. 2.0 starts from the latest 1.3: 1.3.2 -> 1.3.latest, then -> 2.0.x). A step
is reversible only when every release it passes is; its migrations, config, chart and flow
changes are the union of theirs.
"""

from __future__ import annotations

from dataclasses import dataclass

from kestra_ops.errors import InvalidInput
from kestra_ops.upgrades.catalogue import (Catalogue, ConfigChange, FlowChange, Migration, Note,
                                           Release)
from kestra_ops.upgrades.version import Version


@dataclass(frozen=True)
class Step:
    """One step of an upgrade path: from ``start`` to ``end`` through ``releases``."""

    start: Version
    end: Version
    releases: tuple[Release, ...]

    @property
    def reversible(self) -> bool:
        return all(r.reversible for r in self.releases)

    @property
    def name(self) -> str:
        return f"{self.start} -> {self.end}"

    def _union(self, attr: str, key) -> list:
        seen, out = set(), []
        for r in self.releases:
            for item in getattr(r, attr):
                if key(item) not in seen:
                    seen.add(key(item))
                    out.append(item)
        return out

    @property
    def migrations(self) -> list[Migration]:
        return self._union("migrations", lambda m: m.id)

    @property
    def manual(self) -> list[Migration]:
        return [m for m in self.migrations if m.kind == "manual"]

    @property
    def config(self) -> list[ConfigChange]:
        return self._union("config", lambda c: (c.key, c.change))

    @property
    def chart(self) -> list[Note]:
        return self._union("chart", lambda c: c.id)

    @property
    def behaviour(self) -> list[Note]:
        return self._union("behaviour", lambda c: c.id)

    @property
    def flows(self) -> list[FlowChange]:
        return self._union("flows", lambda f: f.id)

    @property
    def sources(self) -> list[str]:
        return list(dict.fromkeys(s for r in self.releases for s in r.sources))

    @property
    def irreversible_because(self) -> list[str]:
        return [f"{r.name}: {r.reversibility}" for r in self.releases if not r.reversible]

    @property
    def unsure(self) -> list[str]:
        return [f"{r.name}: {u}" for r in self.releases for u in r.unsure]

    def to_dict(self) -> dict:
        return {"from": str(self.start), "to": str(self.end), "reversible": self.reversible,
                "releases": [r.name for r in self.releases],
                "reversibility": [f"{r.name}: {r.reversibility}" for r in self.releases],
                "migrations": [m.to_dict() for m in self.migrations],
                "config": [c.to_dict() for c in self.config],
                "chart": [c.to_dict() for c in self.chart],
                "behaviour": [c.to_dict() for c in self.behaviour],
                "flows": [f.to_dict() for f in self.flows],
                "unsure": self.unsure, "sources": self.sources}


def plan_path(cat: Catalogue, start: Version, end: Version) -> list[Step]:
    """The steps from ``start`` (running) to ``end`` (a catalogued target); [] when equal.
    A downgrade, or an end outside the catalogue, is :class:`InvalidInput`."""
    if end < start:
        raise InvalidInput(f"{end} is older than the running {start}: an upgrade never goes "
                           "back", hint="to go back, use kestra-ops rollback (same line) or "
                                        "restore the pre-upgrade backup set")
    if not cat.known(end):
        raise InvalidInput(f"{end} is not in the version catalogue")
    if start < cat.releases[0].first:
        raise InvalidInput(f"the running {start} is older than the version catalogue's first "
                           f"release ({cat.releases[0].first}): its path is not known",
                           hint="upgrade to that release by hand first (Kestra's migration "
                                "guides), then plan from there")
    steps: list[Step] = []
    here = start
    while here < end:
        ahead = cat.between(here, end)
        stop = end
        for r in ahead:
            if r.requires_from is not None and r.requires_from > here:
                stop = r.requires_from
                break
        if stop <= here:  # cannot happen with a checked catalogue; never loop forever
            raise InvalidInput(f"no path from {here} to {end} in the version catalogue")
        steps.append(Step(here, stop, tuple(cat.between(here, stop))))
        here = stop
    return steps
