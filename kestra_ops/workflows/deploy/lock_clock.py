"""Lease times for the deploy lock: MicroTime the API server accepts, in the API server's clock
(its ``Date`` headers), so a holder or reader with a wrong local clock cannot make a live lock look
expired (see :mod:`kestra_ops.workflows.deploy.lock`)."""

from __future__ import annotations

import datetime as dt


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _micro(when: dt.datetime) -> dt.datetime:
    """A time the client serialises as MicroTime: it writes datetimes with isoformat(), which
    drops a zero fraction, and the API server needs all six digits (so 0 µs becomes 1 µs)."""
    when = when.astimezone(dt.timezone.utc)
    return when if when.microsecond else when.replace(microsecond=1)


class ClockSkew:
    """The API server's clock as its ``Date`` headers show it (1 s resolution). An offset within
    :data:`TOLERANCE` is the same clock (0); a larger one is applied to every Lease time."""

    TOLERANCE = 2.0

    def __init__(self) -> None:
        self.offset = 0.0  # seconds to add to the local clock to get the server's

    def observe(self, headers) -> None:
        from email.utils import parsedate_to_datetime

        try:
            date = (headers or {}).get("Date")
            server = parsedate_to_datetime(date) if date else None
        except (TypeError, ValueError, AttributeError):
            server = None
        if server is None or server.tzinfo is None:
            return
        # Date is truncated to the second: the server's time is in [Date, Date + 1)
        offset = (server - _now()).total_seconds() + 0.5
        self.offset = 0.0 if abs(offset) <= self.TOLERANCE else offset

    def now(self) -> dt.datetime:
        return _now() + dt.timedelta(seconds=self.offset)
