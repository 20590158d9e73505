"""The post-deploy checklist and the troubleshooting guide as judges: fetched state (plain JSON)
in, :class:`kestra_ops.results.Item` out, in the style of Argo CD's health checks.

One module per family (``pods``, ``events``, ``storage``, ``kestra``, ``configmap``). Each
declares its checklist items once, in its ``CHECKS`` list (:class:`~kestra_ops.checks.registry.
Check`: id, help, function, what it needs); :mod:`kestra_ops.checks.registry` gathers them, so
the ids, ``--only`` and the command's help follow. An item's function gets a context giving it
the adapter objects it needs (a Kubernetes reader, helm, a Kestra client, a MinIO health probe):
nothing here opens a connection itself. The doctor's rules are declared the same way in
:mod:`kestra_ops.checks.doctor_rules`. :mod:`kestra_ops.checks.runner` runs items concurrently,
each with its own timeout, and repeats the failing ones while ``--wait`` allows.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(value: Any) -> datetime.datetime | None:
    """An RFC 3339 time from Kubernetes or helm (``2026-11-21T10:00:00Z``, nanoseconds and
    offsets included) as an aware datetime; None when empty or unreadable."""
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
    if not isinstance(value, str) or not value.strip():
        return None
    text = _FRACTION.sub(r"\1", value.strip().replace("Z", "+00:00"))
    text = re.sub(r" ([+-]\d{4}) \w+$", r"\1", text)  # helm's "2026-11-21 10:00:00 +0000 UTC"
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def age(seconds: float) -> str:
    """``95`` -> ``1m35s``; for evidence lines."""
    seconds = int(max(seconds, 0))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
