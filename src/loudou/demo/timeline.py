"""The demo's calendar: office-hours moments in the past, strictly increasing per opportunity.

Every event of the demo happens before today (the anchor): nothing may be dated after the real
now, or the state "as of now" read from history would miss it. Moments fall on weekdays in office
hours, in the installation's time zone.
"""

import datetime as dt
import random

from django.utils import timezone

OPENING = dt.time(9, 0)
OFFICE_MINUTES = 9 * 60 + 30  # 09:00 to 18:30


class ReachedToday(Exception):
    """The next event of a deal would happen today or later: the deal stays as it is."""


def local_zone() -> dt.tzinfo:
    return timezone.get_current_timezone()


def office_moment(day: dt.date, rng: random.Random) -> dt.datetime:
    """A moment in office hours on `day` (moved to Monday if it falls on a weekend)."""
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    minutes = rng.randrange(OFFICE_MINUTES)
    start = dt.datetime.combine(day, OPENING, tzinfo=local_zone())
    return start + dt.timedelta(minutes=minutes)


def last_moment(today: dt.date) -> dt.datetime:
    """The latest moment an event may have: yesterday evening."""
    yesterday = today - dt.timedelta(days=1)
    return dt.datetime.combine(yesterday, dt.time(20, 0), tzinfo=local_zone())


class DealClock:
    """The moments of one opportunity's events: each strictly after the one before, none after
    yesterday evening."""

    def __init__(self, start: dt.datetime, horizon: dt.datetime, rng: random.Random) -> None:
        self.current = start
        self.horizon = horizon
        self.rng = rng

    def next(self, days: float) -> dt.datetime:
        """The moment about `days` after the last one; raise ReachedToday past the horizon."""
        target = self.current + dt.timedelta(days=days)
        moment = office_moment(target.astimezone(local_zone()).date(), self.rng)
        if moment <= self.current + dt.timedelta(minutes=5):
            moment = self.current + dt.timedelta(minutes=self.rng.randint(6, 90))
        if moment > self.horizon:
            raise ReachedToday
        self.current = moment
        return moment

    def last_chance(self) -> dt.datetime | None:
        """A moment between the last event and the horizon, or None if there is no room."""
        room = (self.horizon - self.current).total_seconds() / 60
        if room < 10:
            return None
        moment = self.current + dt.timedelta(minutes=self.rng.randint(5, int(min(room - 1, 600))))
        self.current = moment
        return moment

    @property
    def day(self) -> dt.date:
        """The local date of the last event."""
        return self.current.astimezone(local_zone()).date()
