"""The one clock every service reads.

Services never call `timezone.now()` directly: importers and the demo generator replay events
that happened in the past, and they set the clock to the source's own timestamps so that history
rows carry the dates the events really had.
"""

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator

from django.utils import timezone

_local = threading.local()


def now() -> dt.datetime:
    """The current time (UTC, aware), or the time a replay has set."""
    frozen = getattr(_local, "frozen", None)
    return frozen if frozen is not None else timezone.now()


def today() -> dt.date:
    """Today's date in the installation's time zone, as of `now()`."""
    return timezone.localdate(now())


@contextlib.contextmanager
def frozen_at(moment: dt.datetime) -> Iterator[None]:
    """Make `now()` return `moment` inside the block (this thread only)."""
    if timezone.is_naive(moment):
        raise ValueError("frozen_at needs an aware datetime")
    previous = getattr(_local, "frozen", None)
    _local.frozen = moment
    try:
        yield
    finally:
        _local.frozen = previous
