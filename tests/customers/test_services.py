"""account_create, account_update and account_qualify: rules, audit, rights."""

from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType

from loudou.core.errors import PermissionDenied, ValidationFailed
from loudou.core.models import AuditEvent
from loudou.customers.models import Account, AccountQualification, Industry
from loudou.customers.services import account_create, account_qualify, account_update
from tests.conftest import credit_code


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The org fixture creates nine users; hashing their passwords slowly is not under test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def state() -> dict[str, object]:
    """Everything an account write may touch."""
    return {
        "accounts": list(
            Account.objects.order_by("pk").values_list(
                "pk", "name", "credit_code", "industry", "revenue", "parent", "is_target"
            )
        ),
        "audit": AuditEvent.objects.count(),
        "qualifications": AccountQualification.objects.count(),
    }


def make(org, name: str, owner: str = "seller", **data):
    return account_create(actor=org[owner], name=name, **data)


# --- account_create ------------------------------------------------------------------------


def test_account_create_writes_the_account_and_audits_it(org):
    power = Industry.objects.get(key="power")

    account = make(
        org,
        " 华北电力集团 ",
        credit_code=credit_code(7),
        industry="power",
        size_band="large",
        employees=5000,
        revenue="1,200,000,000.5",
        revenue_currency="cny",
        organisations_count=12,
        it_need="集团管控",
        product_fit="多组织",
    )

    account.refresh_from_db()
    assert (account.name, account.revenue, account.revenue_currency) == (
        "华北电力集团",
        Decimal("1200000000.50"),
        "CNY",
    )
    assert (account.owner, account.branch, account.is_target) == (
        org["seller"],
        org["beijing"],
        True,
    )
    events = list(
        AuditEvent.objects.filter(
            content_type=ContentType.objects.get_for_model(Account), object_id=str(account.pk)
        ).order_by("id")
    )
    assert [e.action for e in events] == ["account.create", "account.qualify"]
    create = events[0]
    assert (create.actor, create.before) == (org["seller"], None)
    assert create.after == {
        "name": "华北电力集团",
        "credit_code": credit_code(7),
        "industry": power.pk,
        "size_band": "large",
        "employees": 5000,
        "revenue": "1200000000.50",
        "revenue_currency": "CNY",
        "parent": None,
        "organisations_count": 12,
        "it_need": "集团管控",
        "product_fit": "多组织",
        "owner": org["seller"].pk,
        "branch": org["beijing"].pk,
        "is_target": False,
    }
    assert (events[1].before, events[1].after) == (
        {"is_target": None},
        {"is_target": True, "overridden": False},
    )


@pytest.mark.parametrize(
    ("data", "message", "details"),
    [
        (
            {"revenue": "-1"},
            "An amount cannot be negative (-1).",
            {"revenue": "negative"},
        ),
        (
            {"credit_code": credit_code(1)},
            f"Another account already has the credit code {credit_code(1)}.",
            {"credit_code": "duplicate"},
        ),
        (
            {"industry": "astrology"},
            "Unknown industry “astrology”.",
            {"industry": "unknown"},
        ),
        (
            {"size_band": "huge"},
            "Size must be one of large, medium, small, micro.",
            {"size_band": "invalid"},
        ),
        ({"employees": -3}, "employees cannot be negative.", {"employees": "negative"}),
        ({"name": "  "}, "An account needs a name.", {"name": "required"}),
    ],
)
def test_account_create_refuses_bad_data_and_writes_nothing(account, data, message, details):
    data = {"name": "新客户", **data}
    before = state()

    with pytest.raises(ValidationFailed) as caught:
        account_create(actor=account.owner, **data)

    assert (caught.value.message, caught.value.details) == (message, details)
    assert state() == before


def test_account_create_for_someone_else_needs_their_manager(org):
    before = state()

    with pytest.raises(PermissionDenied):
        account_create(actor=org["seller"], owner=org["tj_seller"], name="代建客户")
    assert state() == before

    account = account_create(actor=org["north_manager"], owner=org["tj_seller"], name="代建客户")
    assert (account.owner, account.branch) == (org["tj_seller"], org["tianjin"])


# --- account_update ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message", "details"),
    [
        ({"revenue": "-1"}, "An amount cannot be negative (-1).", {"revenue": "negative"}),
        (
            {"credit_code": credit_code(2)},
            f"Another account already has the credit code {credit_code(2)}.",
            {"credit_code": "duplicate"},
        ),
        ({"industry": "astrology"}, "Unknown industry “astrology”.", {"industry": "unknown"}),
        (
            {"owner": None},
            "These fields cannot be set here: owner.",
            {},
        ),
    ],
)
def test_account_update_refuses_bad_data_and_changes_nothing(account, org, data, message, details):
    make(org, "另一家", credit_code=credit_code(2))
    before = state()

    with pytest.raises(ValidationFailed) as caught:
        account_update(account=account, actor=org["seller"], name="改了名", **data)

    assert (caught.value.message, caught.value.details) == (message, details)
    assert state() == before


def test_an_account_may_keep_its_own_credit_code(account, org):
    updated = account_update(account=account, actor=org["seller"], credit_code=credit_code(1))

    assert updated.credit_code == credit_code(1)


def test_account_update_audits_before_and_after(account, org):
    finance = Industry.objects.get(key="finance")
    power = Industry.objects.get(key="power")
    before_count = AuditEvent.objects.count()

    account_update(
        account=account, actor=org["seller"], industry="finance", revenue="3000000", employees=800
    )

    account.refresh_from_db()
    assert (account.industry, account.revenue, account.employees) == (
        finance,
        Decimal("3000000.00"),
        800,
    )
    assert AuditEvent.objects.count() == before_count + 1  # still a target: no qualify event
    event = AuditEvent.objects.latest("id")
    assert (event.action, event.actor, event.object_id) == (
        "account.update",
        org["seller"],
        str(account.pk),
    )
    changed = {k for k in event.after if event.after[k] != event.before[k]}
    assert changed == {"industry", "revenue", "employees"}
    assert (event.before["industry"], event.after["industry"]) == (power.pk, finance.pk)
    assert (event.before["revenue"], event.after["revenue"]) == (None, "3000000.00")
    assert (event.before["employees"], event.after["employees"]) == (None, 800)


def test_an_update_that_breaks_the_icp_requalifies_the_account(account, org):
    account_update(account=account, actor=org["seller"], industry="retail")

    account.refresh_from_db()
    assert account.is_target is False
    event = AuditEvent.objects.latest("id")
    assert (event.action, event.before, event.after) == (
        "account.qualify",
        {"is_target": True},
        {"is_target": False, "overridden": False},
    )


def test_a_parent_cycle_is_refused_and_nothing_changes(org):
    a = make(org, "A 集团")
    b = make(org, "B 公司", parent=a)
    c = make(org, "C 工厂", parent=b)
    before = state()

    with pytest.raises(ValidationFailed) as caught:
        account_update(account=a, actor=org["seller"], parent=c)

    assert caught.value.message == (
        "C 工厂 cannot be the group of A 集团: A 集团 is already above it in the group hierarchy."
    )
    assert caught.value.details == {"parent": "cycle"}
    assert state() == before
    a.refresh_from_db()
    assert a.parent_id is None


def test_an_account_cannot_be_its_own_parent(org):
    a = make(org, "A 集团")
    before = state()

    with pytest.raises(ValidationFailed) as caught:
        account_update(account=a, actor=org["seller"], parent=a)

    assert caught.value.details == {"parent": "cycle"}
    assert state() == before


def test_moving_a_member_inside_its_group_is_allowed(org):
    a = make(org, "A 集团")
    b = make(org, "B 公司", parent=a)
    c = make(org, "C 工厂", parent=b)

    account_update(account=c, actor=org["seller"], parent=a)

    c.refresh_from_db()
    assert c.parent == a
    event = AuditEvent.objects.filter(action="account.update").latest("id")
    assert (event.before["parent"], event.after["parent"]) == (b.pk, a.pk)


@pytest.mark.parametrize("who", ["teammate", "tj_seller", "sh_seller", "sh_manager"])
def test_someone_else_cannot_update_the_sellers_account(account, org, who):
    before = state()

    with pytest.raises(PermissionDenied) as caught:
        account_update(account=account, actor=org[who], name="被改了")

    assert caught.value.message == "Only the account's owner or a manager may change it."
    assert state() == before


@pytest.mark.parametrize("who", ["manager", "north_manager", "executive", "admin"])
def test_a_manager_over_the_branch_can_update_the_sellers_account(account, org, who):
    account_update(account=account, actor=org[who], name="华北电力集团有限公司")

    account.refresh_from_db()
    assert account.name == "华北电力集团有限公司"
    event = AuditEvent.objects.latest("id")
    assert (event.action, event.actor, event.before["name"], event.after["name"]) == (
        "account.update",
        org[who],
        "华北电力集团",
        "华北电力集团有限公司",
    )


def test_a_non_numeric_employee_count_is_a_validation_error(account, org):
    with pytest.raises(ValidationFailed):
        account_update(account=account, actor=org["seller"], employees="many")


# --- account_qualify: a manager's override -------------------------------------------------


def test_an_override_needs_a_manager(account, org):
    before = state()

    with pytest.raises(PermissionDenied):
        account_qualify(account=account, actor=org["seller"], override=False, reason="No budget")

    assert state() == before


def test_an_override_needs_a_reason(account, org):
    before = state()

    with pytest.raises(ValidationFailed) as caught:
        account_qualify(account=account, actor=org["manager"], override=False, reason="  ")

    assert (caught.value.message, caught.value.details) == (
        "An override needs a reason.",
        {"reason": "required"},
    )
    assert state() == before


def test_a_managers_override_sticks_on_later_requalification(account, org):
    assert account.is_target is True

    q = account_qualify(
        account=account, actor=org["manager"], override=False, reason="Budget frozen until 2027"
    )

    account.refresh_from_db()
    assert (account.is_target, q.is_target, q.overridden, q.actor) == (
        False,
        False,
        True,
        org["manager"],
    )
    assert all(r["holds"] for r in q.results)  # the ICP still fits; the manager says no
    event = AuditEvent.objects.latest("id")
    assert (event.action, event.before, event.after, event.reason) == (
        "account.qualify",
        {"is_target": True},
        {"is_target": False, "overridden": True},
        "Budget frozen until 2027",
    )

    # the owner's later edit and an explicit re-qualification keep the manager's verdict
    account_update(account=account, actor=org["seller"], name="华北电力集团有限公司")
    again = account_qualify(account=account, actor=org["seller"])

    account.refresh_from_db()
    assert account.is_target is False
    assert (again.is_target, again.overridden) == (False, True)
    assert list(
        account.qualifications.order_by("at", "id").values_list("is_target", "overridden")
    ) == [(True, False), (False, True), (False, True), (False, True)]

    # only a manager changes it back
    account_qualify(account=account, actor=org["north_manager"], override=True, reason="Unfrozen")
    account.refresh_from_db()
    assert account.is_target is True


def test_an_override_can_make_a_non_fitting_account_a_target(org):
    account = make(org, "小公司", industry="retail", size_band="small")
    assert account.is_target is False

    account_qualify(account=account, actor=org["manager"], override=True, reason="Strategic")
    account_update(account=account, actor=org["seller"], employees=20)

    account.refresh_from_db()
    assert account.is_target is True


def test_contact_update_strips_and_refuses_an_empty_name(account, org):
    from loudou.customers.services import contact_update

    contact = account.contacts.get()
    with pytest.raises(ValidationFailed) as refused:
        contact_update(contact=contact, actor=org["seller"], name="   ", title="CEO")
    assert refused.value.details == {"name": "required"}
    contact.refresh_from_db()
    assert (contact.name, contact.title) == ("王总", "CIO")
    contact_update(contact=contact, actor=org["seller"], name="  王建 ", title=" CTO ")
    contact.refresh_from_db()
    assert (contact.name, contact.title) == ("王建", "CTO")
