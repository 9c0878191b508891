"""The defect the service fuzz found on PostgreSQL: text longer than its column. A key date's
label, a competitor's name, who a deal was lost to, a deal's source (at creation and on update),
an account's name, a contact's name, title and phone, and a user's display name, each one
character too long: PostgreSQL refuses such a save with a DataError (a server error, not a
message), SQLite keeps it whole; the service must refuse it with a ValidationFailed naming the
field, and change nothing. Run in the fuzz's world (`service_fuzz_world.py`).
"""

import datetime as dt
from typing import Any

import pytest
from django.db import transaction

from loudou.core import clock
from loudou.core.errors import ValidationFailed
from loudou.customers.services import account_create, contact_create, contact_update
from loudou.org.models import User
from loudou.org.services import user_create
from loudou.pipeline import services as ps
from tests.conftest import credit_code
from tests.trust import service_fuzz_world
from tests.trust.service_fuzz_world import EVIDENCE, World, state

world = service_fuzz_world.world  # the fuzz's world (a fixture, reused as is)

LONG = "长" * 121  # one more than the 120-character columns hold


def _too_long_calls(w: World) -> dict[str, Any]:
    org, deal, acc = w.org, w.deals[0], w.accounts[0]
    seller = org["seller"]
    contact = acc.contacts.first()
    close = clock.today() + dt.timedelta(days=30)
    return {
        "key_date.label": lambda: ps.key_date_set(
            opportunity=deal, actor=seller, kind="custom", planned=close, label=LONG
        ),
        "competitor.name": lambda: ps.competitor_add(opportunity=deal, actor=seller, name=LONG),
        "lose.lost_to": lambda: ps.opportunity_lose(
            opportunity=deal, actor=seller, reason="price", lost_to=LONG
        ),
        "opportunity.source (create)": lambda: ps.opportunity_create(
            actor=seller,
            account=acc,
            name="新商机",
            amount="1",
            close_date=close,
            source=LONG,
            evidence=EVIDENCE["discover"],
        ),
        "opportunity.source (update)": lambda: ps.opportunity_update(
            opportunity=deal, actor=seller, source=LONG
        ),
        "account.name": lambda: account_create(
            actor=seller, name="长" * 201, credit_code=credit_code(31), organisations_count=1
        ),
        "contact.name": lambda: contact_create(account=acc, actor=seller, name=LONG),
        "contact.title": lambda: contact_create(account=acc, actor=seller, name="张", title=LONG),
        "contact.phone": lambda: contact_create(
            account=acc, actor=seller, name="张", phone="1" * 41
        ),
        "contact.name (update)": lambda: contact_update(contact=contact, actor=seller, name=LONG),
        "user.display_name": lambda: user_create(
            actor=org["admin"],
            username="long_name",
            password="loudou-test-pw-1",
            display_name=LONG,
            branch=org["beijing"],
            check_password=False,
        ),
    }


TOO_LONG = [
    "key_date.label",
    "competitor.name",
    "lose.lost_to",
    "opportunity.source (create)",
    "opportunity.source (update)",
    "account.name",
    "contact.name",
    "contact.title",
    "contact.phone",
    "contact.name (update)",
    "user.display_name",
]


@pytest.mark.parametrize("case", TOO_LONG)
def test_text_longer_than_its_column_is_a_validation_error(world: World, case: str) -> None:
    """Found by the fuzz on PostgreSQL: these services save text longer than its column holds,
    which PostgreSQL refuses with a DataError (a server error, not a message), and SQLite keeps
    whole. Each must refuse with a ValidationFailed naming the field, and change nothing."""
    call = _too_long_calls(world)[case]
    before = (state(), User.objects.count())
    # A DataError on PostgreSQL must not break the test's transaction: a savepoint around it.
    with transaction.atomic(), pytest.raises(ValidationFailed):
        call()
    assert (state(), User.objects.count()) == before
