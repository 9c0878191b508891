"""The known history the analytics page tests read (`history`): six deals of the Beijing seller
and one of Shanghai, worked by hand in docs/analytics-velocity.md; and the targets set against
them (`targets`)."""

import datetime as dt
from typing import Any

import pytest

from loudou.core import clock
from loudou.org.services import target_set
from loudou.pipeline import services as ps
from tests.conftest import INTENT_EVIDENCE
from tests.web.analytics.history import at, jan


@pytest.fixture
def history(walker: Any, org: dict[str, Any], sh_account: Any) -> dict[str, Any]:
    """Six deals of the Beijing seller created Jan 1 2026 (10:00) in discover at 1,000,000,
    expected to close Apr 30; read on Mar 12 (70 days later) — docs/analytics-velocity.md:

    A: → intent Jan 11; walked to won Feb 10      B: → intent Jan 21, still there
    C: lost in discover Jan 31                    D: → intent Feb 10, still there
    E: still in discover (70 days: stalled)       F: → intent Jan 6, back to discover Jan 16

    And the Shanghai seller's 上海财务云 (3,000,000, discover since Jan 1: stalled too), which no
    Beijing user may see in any figure."""
    seller = org["seller"]
    deals = {}
    with clock.frozen_at(at(jan(1))):
        for name in "ABCDEF":
            deals[name] = walker.create(name=name, close_date=dt.date(2026, 4, 30))
        deals["SH"] = ps.opportunity_create(
            actor=org["sh_seller"],
            account=sh_account,
            name="上海财务云",
            amount="3000000",
            close_date=dt.date(2026, 4, 30),
            source="Event",
            evidence={"need_found": "CFO"},
        )

    def advance(name: str, day: dt.date) -> None:
        with clock.frozen_at(at(day)):
            deals[name] = ps.opportunity_advance(
                opportunity=deals[name], to_stage="intent", actor=seller, evidence=INTENT_EVIDENCE
            )

    advance("F", jan(6))
    advance("A", jan(11))
    with clock.frozen_at(at(jan(16))):
        ps.opportunity_regress(
            opportunity=deals["F"], to_stage="discover", actor=seller, reason="no budget yet"
        )
    advance("B", jan(21))
    with clock.frozen_at(at(jan(31))):
        ps.opportunity_lose(opportunity=deals["C"], actor=seller, reason="price")
    advance("D", jan(41))
    with clock.frozen_at(at(jan(41))):
        deals["A"] = walker.to(deals["A"], "closed")
    return deals


@pytest.fixture
def targets(org: dict[str, Any]) -> None:
    """The seller: 300,000 a month in Q1 and 400,000 in April; the company 2,000,000 in April."""
    for month in (1, 2, 3):
        target_set(actor=None, month=dt.date(2026, month, 1), amount="300000", user=org["seller"])
    target_set(actor=None, month=dt.date(2026, 4, 1), amount="400000", user=org["seller"])
    target_set(actor=None, month=dt.date(2026, 4, 1), amount="2000000")
