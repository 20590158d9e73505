"""flows plan: per flow create / update / unchanged / delete against the server, with a diff.

``delete`` means the server holds the flow in a namespace the directory has flows in, and the
directory does not: ``flows apply`` removes those only with ``--prune``. Namespaces the directory
has no flow in are never touched. Sources are compared as text (line endings and outer blank
lines aside); diffs mask literal secret values (``password: hunter2``) with the one redaction
helper, while expressions such as ``{{ secret('DB_PASSWORD') }}`` stay visible. A masked value
carries a short digest (as the manifest diff does for Secrets): a change of the secret alone
still shows as a changed line.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import re
from dataclasses import dataclass, field

from kestra_ops.redact import MASK, is_placeholder, is_secret_key
from kestra_ops.results import Section, Table
from kestra_ops.workflows.flows.remote import RemoteFlow, fetch_remote
from kestra_ops.workflows.flows.yamldoc import LocalFlow, flow_text

ACTIONS = ("create", "update", "delete", "unchanged")
_KEY_LINE = re.compile(r"^(?P<lead>\s*(?:-\s+)?)(?P<key>[\w.-]+):\s+(?P<value>\S.*)$")


@dataclass
class FlowChange:
    action: str  # create | update | delete | unchanged
    namespace: str
    id: str
    file: str | None = None
    source: str | None = None  # the local text (create/update/unchanged)
    revision: int | None = None  # the server's revision (update/delete/unchanged)
    before: str | None = field(default=None, repr=False)  # the server's text
    note: str = ""  # e.g. why a delete is not carried out

    @property
    def name(self) -> str:
        return f"{self.namespace}.{self.id}"

    @functools.cached_property
    def diff(self) -> str:
        """The unified diff server -> local (computed when first shown)."""
        if self.action == "unchanged":
            return ""
        old = f"server {self.namespace}/{self.id} (revision {self.revision})" \
            if self.before is not None else "/dev/null"
        return source_diff(self.before, self.source, old, self.file or "/dev/null")

    def to_dict(self, diffs: bool = True) -> dict:
        return {"action": self.action, "namespace": self.namespace, "id": self.id,
                "file": self.file, "revision": self.revision,
                "diff": self.diff if diffs else None,
                "note": self.note or None}


@dataclass
class FlowPlan:
    namespaces: list[str]
    changes: list[FlowChange] = field(default_factory=list)

    def of(self, *actions: str) -> list[FlowChange]:
        return [c for c in self.changes if c.action in actions]

    @property
    def changed(self) -> bool:
        return bool(self.of("create", "update", "delete"))

    def counts(self) -> dict[str, int]:
        return {a: len(self.of(a)) for a in ACTIONS}

    def summary(self) -> str:
        counts = self.counts()
        return ", ".join(f"{n} to {a}" if a != "unchanged" else f"{n} unchanged"
                         for a, n in counts.items() if n or a == "unchanged")

    def lines(self, *, diffs: bool = True) -> list[str]:
        out = []
        for c in self.changes:
            if c.action == "unchanged":
                continue
            rev = f" (revision {c.revision})" if c.revision is not None else ""
            where = f"  [{c.file}]" if c.file else ""
            note = f"  -- {c.note}" if c.note else ""
            out.append(f"{c.action:9} {c.name}{rev}{where}{note}")
            if diffs and c.diff:
                out.extend("    " + line for line in c.diff.rstrip("\n").splitlines())
        return out

    def table(self) -> Table:
        """The changes (not the unchanged flows), one row each."""
        return Table(CHANGE_COLUMNS, [change_row(c) for c in self.changes
                                      if c.action != "unchanged"], "changes")

    def diff_sections(self) -> list[Section]:
        """One titled block per change with a diff (the diff server -> local)."""
        return [Section(f"{c.action} {c.name}", c.diff.rstrip("\n").splitlines())
                for c in self.changes if c.action != "unchanged" and c.diff]

    def to_dict(self, diffs: bool = True) -> dict:
        return {"namespaces": self.namespaces, "changed": self.changed, "counts": self.counts(),
                "summary": self.summary(),
                "changes": [c.to_dict(diffs) for c in self.changes]}


CHANGE_COLUMNS = ["action", "flow", "revision", "file", "note"]


def change_row(change: FlowChange, revision: str | None = None) -> list[str]:
    """A change as a row of :data:`CHANGE_COLUMNS` (``revision`` overrides the server's)."""
    if revision is None:
        revision = "" if change.revision is None else str(change.revision)
    return [change.action, change.name, revision, change.file or "", change.note]


def mask_line(line: str) -> str:
    """``password: hunter2`` -> ``password: ******``; keys that only name a secret, Kestra
    expressions and ``${VAR}`` placeholders stay as they are."""
    m = _KEY_LINE.match(line)
    if not m or not is_secret_key(m["key"]):
        return line
    value = m["value"].strip()
    if "{{" in value or is_placeholder(value.strip("'\"")) or value in ("|", ">", "|-", ">-"):
        return line
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]  # a change shows, the value never
    return f"{m['lead']}{m['key']}: {MASK} (sha256:{digest})"


def source_diff(before: str | None, after: str | None, old_label: str, new_label: str) -> str:
    old = [mask_line(x) + "\n" for x in flow_text(before).splitlines()] if before else []
    new = [mask_line(x) + "\n" for x in flow_text(after).splitlines()] if after else []
    return "".join(difflib.unified_diff(old, new, old_label, new_label))


def compute_plan(flows: list[LocalFlow], remote: dict[tuple[str, str], RemoteFlow]) -> FlowPlan:
    """Compare the local flows with the server's flows of the same namespaces."""
    namespaces = sorted({f.namespace for f in flows if f.namespace})
    plan = FlowPlan(namespaces)
    for flow in sorted(flows, key=lambda f: f.key):
        there = remote.get(flow.key)
        if there is None:
            action = "create"
        elif flow_text(there.source) == flow_text(flow.source):
            action = "unchanged"
        else:
            action = "update"
        plan.changes.append(FlowChange(action, *flow.key, flow.file, flow.source,
                                       there.revision if there else None,
                                       there.source if there else None))
    local_keys = {f.key for f in flows}
    for key in sorted(set(remote) - local_keys):
        there = remote[key]
        plan.changes.append(FlowChange("delete", *key, None, None, there.revision, there.source))
    return plan


def plan_flows(client, flows: list[LocalFlow]) -> FlowPlan:
    """Fetch the server's flows of the directory's namespaces, then :func:`compute_plan`."""
    namespaces = {f.namespace for f in flows if f.namespace}
    return compute_plan(flows, fetch_remote(client, namespaces))
