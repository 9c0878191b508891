"""The caches analytics keeps beside history (stays and state spans), rebuilt and verified
together: what `loudou analytics rebuild|verify` and a dump's restore run."""

from django.db import transaction

from loudou.analytics.spans import spans_rebuild, spans_verify
from loudou.analytics.stays import stays_rebuild, stays_verify


@transaction.atomic
def caches_rebuild() -> dict[str, int]:
    """Recompute every cache from the whole history; the number of rows of each."""
    return {"stays": stays_rebuild(), "spans": spans_rebuild()}


def caches_verify() -> list[str]:
    """Every difference between a cache (or an opportunity's current fields) and the history;
    empty when they agree."""
    return stays_verify() + spans_verify()
