"""Kestra's own counts of what a mode change must not lose: flows, executions and triggers, read
through the API before and after (one call each: the ``total`` of a one-item search page).

Triggers: Kestra's trigger state (``GET triggers/search``); on a server without that endpoint
(:class:`NotFound`) the triggers the flows declare are counted instead, and the report says which.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from kestra_ops.errors import NotFound

KINDS = ("flows", "executions", "triggers")


@dataclass(frozen=True)
class Counts:
    flows: int
    executions: int
    triggers: int
    triggers_from: str  # "triggers/search" or "the flows' declarations"

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        return (f"{self.flows} flows, {self.executions} executions, {self.triggers} triggers "
                f"(from {self.triggers_from})")


def read_counts(client) -> Counts:
    """The counts now (the client's typed errors when Kestra cannot answer)."""
    flows = client.count_flows()
    executions = client.count_executions()
    try:
        triggers, source = client.count_triggers(), "triggers/search"
    except NotFound:
        triggers = sum(len(f.get("triggers") or []) for f in client.search_flows())
        source = "the flows' declarations"
    return Counts(flows, executions, triggers, source)


def lost(before: Counts, after: Counts) -> list[str]:
    """What is fewer after than before, e.g. ``["flows 12 -> 11"]`` (triggers only compared
    when both were read the same way)."""
    out = []
    for kind in KINDS:
        if kind == "triggers" and before.triggers_from != after.triggers_from:
            continue
        was, now = getattr(before, kind), getattr(after, kind)
        if now < was:
            out.append(f"{kind} {was} -> {now}")
    return out
