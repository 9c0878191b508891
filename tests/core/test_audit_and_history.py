"""History and audit rows are written once; audit actions are registered; amounts parse."""

from decimal import Decimal

import pytest
from django.db import transaction

from loudou.core.audit import ACTIONS, audit
from loudou.core.errors import ValidationFailed
from loudou.core.models import AppendOnlyError, AuditEvent
from loudou.core.money import parse_amount
from loudou.pipeline.models import OpportunityHistory


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The org fixture creates nine users; hashing their passwords slowly is not under test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def opportunity(walker):
    return walker.to(walker.create(), "intent")


def rows(model) -> list[tuple]:
    return list(model.objects.order_by("pk").values_list("pk", "reason"))


@pytest.fixture(params=[OpportunityHistory, AuditEvent], ids=["history", "audit"])
def model(request, opportunity):
    assert request.param.objects.exists()
    return request.param


def test_saving_an_existing_row_is_refused(model):
    row = model.objects.order_by("pk").first()
    before = rows(model)
    row.reason = "tampered"

    with pytest.raises(AppendOnlyError, match=f"{model.__name__} rows are append-only"):
        row.save()
    with pytest.raises(AppendOnlyError):
        row.save(update_fields=["reason"])

    assert rows(model) == before


def test_deleting_a_row_is_refused(model):
    row = model.objects.order_by("pk").first()
    before = rows(model)

    with pytest.raises(AppendOnlyError):
        row.delete()

    assert rows(model) == before


def test_queryset_update_and_delete_are_refused(model):
    before = rows(model)

    with pytest.raises(AppendOnlyError):
        model.objects.all().update(reason="tampered")
    with pytest.raises(AppendOnlyError):
        model.objects.filter(pk__gt=0).delete()
    with pytest.raises(AppendOnlyError):
        model.objects.all().delete()
    row = model.objects.order_by("pk").first()
    row.reason = "tampered"
    # bulk_update runs in an atomic block without a savepoint: give it one
    with pytest.raises(AppendOnlyError), transaction.atomic():
        model.objects.bulk_update([row], ["reason"])

    assert rows(model) == before


def test_history_through_the_opportunity_is_append_only_too(opportunity):
    before = rows(OpportunityHistory)

    with pytest.raises(AppendOnlyError):
        opportunity.history.update(reason="tampered")
    with pytest.raises(AppendOnlyError):
        opportunity.history.all().delete()

    assert rows(OpportunityHistory) == before
    assert list(
        opportunity.history.order_by("valid_from", "id").values_list("action", "stage__key")
    ) == [("create", "discover"), ("advance", "intent")]


def test_audit_refuses_an_unknown_action(account, org):
    before = AuditEvent.objects.count()

    with pytest.raises(ValueError) as caught:
        audit("account.explode", account, actor=org["seller"], after={"boom": True})

    assert str(caught.value) == "unknown audit action 'account.explode'"

    assert AuditEvent.objects.count() == before


def test_audit_records_a_known_action(account, org):
    assert "account.update" in ACTIONS

    event = audit(
        "account.update",
        account,
        actor=org["seller"],
        before={"name": "a"},
        after={"name": "b"},
        reason="why",
    )

    event.refresh_from_db()
    assert (event.action, event.actor, event.object_id, event.object_repr) == (
        "account.update",
        org["seller"],
        str(account.pk),
        "华北电力集团",
    )
    assert (event.before, event.after, event.reason) == ({"name": "a"}, {"name": "b"}, "why")


# --- money ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1,200,000.5", "1200000.50"),
        ("0", "0.00"),
        (" 42 ", "42.00"),
        ("0.005", "0.01"),
        (1500, "1500.00"),
        (Decimal("99.999"), "100.00"),
        ("9999999999999999.99", "9999999999999999.99"),
    ],
)
def test_parse_amount_accepts(value, expected):
    amount = parse_amount(value)

    assert amount == Decimal(expected)
    assert str(amount) == expected


@pytest.mark.parametrize(
    ("value", "message", "details"),
    [
        ("-1", "An amount cannot be negative (-1).", {"amount": "negative"}),
        ("abc", "“abc” is not an amount.", {"amount": "not a number"}),
        ("NaN", "An amount must be a finite number.", {"amount": "nan"}),
        ("Infinity", "An amount must be a finite number.", {"amount": "nan"}),
        ("1e20", "The amount is too large.", {"amount": "too large"}),
        ("1e30", "The amount is too large.", {"amount": "too large"}),
        ("1e16", "The amount is too large.", {"amount": "too large"}),
        ("", "An amount is required.", {"amount": "required"}),
        (None, "An amount is required.", {"amount": "required"}),
    ],
)
def test_parse_amount_refuses(value, message, details):
    with pytest.raises(ValidationFailed) as caught:
        parse_amount(value)

    assert (caught.value.message, caught.value.details) == (message, details)


def test_parse_amount_names_the_field_and_may_allow_none():
    assert parse_amount("", allow_none=True) is None
    with pytest.raises(ValidationFailed) as caught:
        parse_amount("-5", field="budget")
    assert caught.value.details == {"budget": "negative"}


def test_an_amount_that_rounds_up_to_the_limit_is_refused():
    with pytest.raises(ValidationFailed):
        parse_amount("9999999999999999.995")
