"""The pure grandfather-father-son selection of backup prune, with synthetic dates."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import pytest

from kestra_ops.errors import InvalidInput
from kestra_ops.workflows.backup.prune import select

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 3, 31, 12, 0, tzinfo=UTC)


@dataclass
class S:
    time: datetime.datetime
    complete: bool = True

    @property
    def name(self) -> str:
        return self.time.strftime("%Y%m%dT%H%M%SZ")


def daily(days: int, hour: int = 2) -> list[S]:
    """One complete set a day at ``hour``, ending on NOW's day."""
    return [S(datetime.datetime(2026, 3, 31, hour, tzinfo=UTC) - datetime.timedelta(days=i))
            for i in range(days)]


def test_daily_keeps_newest_per_day_for_n_days():
    sets = daily(10) + [S(datetime.datetime(2026, 3, 31, 1, tzinfo=UTC))]  # 2 on the last day
    plan = select(sets, now=NOW, keep_daily=3, keep_weekly=0, keep_monthly=0)
    assert list(plan.keep) == ["20260331T020000Z", "20260330T020000Z", "20260329T020000Z"]
    assert "20260331T010000Z" in plan.delete
    assert len(plan.delete) == 8 and plan.blocked is None


def test_weekly_and_monthly_keep_newest_per_iso_week_and_month():
    sets = daily(70)  # 2026-01-21 .. 2026-03-31
    plan = select(sets, now=NOW, keep_daily=0, keep_weekly=3, keep_monthly=3)
    weekly = [n for n, r in plan.keep.items() if "weekly" in r]
    monthly = [n for n, r in plan.keep.items() if "monthly" in r]
    # 2026-03-31 is a Tuesday (ISO week 14); week 13 ends Sunday 03-29, week 12 on 03-22
    assert weekly == ["20260331T020000Z", "20260329T020000Z", "20260322T020000Z"]
    assert monthly == ["20260331T020000Z", "20260228T020000Z", "20260131T020000Z"]
    assert set(plan.delete) == {s.name for s in sets} - set(plan.keep)


def test_overlapping_rules_are_listed_once_with_every_reason():
    plan = select(daily(2), now=NOW, keep_daily=1, keep_weekly=1, keep_monthly=1)
    assert plan.keep == {"20260331T020000Z": ["daily", "weekly", "monthly", "newest complete"]}
    assert plan.delete == ["20260330T020000Z"]


def test_newest_complete_is_kept_even_with_zero_counts():
    plan = select(daily(3), now=NOW, keep_daily=0, keep_weekly=0, keep_monthly=0)
    assert plan.keep == {"20260331T020000Z": ["newest complete"]}
    assert plan.to_delete == ["20260330T020000Z", "20260329T020000Z"]


def test_newest_failed_blocks_everything():
    sets = daily(10) + [S(datetime.datetime(2026, 3, 31, 3, tzinfo=UTC), complete=False)]
    plan = select(sets, now=NOW, keep_daily=1, keep_weekly=0, keep_monthly=0)
    assert plan.blocked and "20260331T030000Z" in plan.blocked
    assert plan.to_delete == [] and plan.keep == {}


def test_incomplete_sets_older_than_a_day_go_younger_stay():
    old = S(datetime.datetime(2026, 3, 29, 3, tzinfo=UTC), complete=False)
    young = S(NOW - datetime.timedelta(hours=20), complete=False)
    plan = select(daily(3, hour=4) + [old, young][::-1], now=NOW, keep_daily=3,
                  keep_weekly=0, keep_monthly=0)
    assert plan.blocked is None
    assert plan.delete_incomplete == [old.name] and plan.delete == []
    assert young.name not in plan.to_delete and young.name not in plan.keep


def test_incomplete_sets_never_count_for_retention():
    sets = [S(datetime.datetime(2026, 3, 30, 2, tzinfo=UTC), complete=False),
            S(datetime.datetime(2026, 3, 31, 2, tzinfo=UTC)),
            S(datetime.datetime(2026, 3, 29, 2, tzinfo=UTC))]
    plan = select(sets, now=NOW, keep_daily=2, keep_weekly=0, keep_monthly=0)
    assert list(plan.keep) == ["20260331T020000Z", "20260329T020000Z"]
    assert plan.delete_incomplete == ["20260330T020000Z"]


def test_no_sets_and_negative_counts():
    empty = select([], now=NOW, keep_daily=1, keep_weekly=1, keep_monthly=1)
    assert empty.keep == {} and empty.to_delete == [] and empty.blocked is None
    with pytest.raises(InvalidInput, match="--keep-weekly"):
        select(daily(1), now=NOW, keep_daily=1, keep_weekly=-1, keep_monthly=0)


def test_sets_dated_in_the_future_are_never_counted():
    """A set from the future (a wrong clock, a made-up name) would be "the newest" forever and
    steer every deletion: it is ignored, never kept, never deleted, never blocking."""
    far = S(NOW + datetime.timedelta(days=400))
    failed = S(NOW + datetime.timedelta(days=1), complete=False)
    plan = select(daily(5) + [far, failed], now=NOW, keep_daily=1, keep_weekly=0,
                  keep_monthly=0)
    assert plan.blocked is None
    assert plan.keep == {"20260331T020000Z": ["daily", "newest complete"]}
    assert plan.ignored == [far.name, failed.name]
    assert len(plan.to_delete) == 4 and not set(plan.ignored) & set(plan.to_delete)


def test_a_set_within_the_clock_skew_counts():
    near = S(NOW + datetime.timedelta(minutes=4))
    plan = select(daily(2) + [near], now=NOW, keep_daily=0, keep_weekly=0, keep_monthly=0)
    assert plan.keep == {near.name: ["newest complete"]} and plan.ignored == []
