"""Targets (业绩目标), role changes and the branch tree."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from loudou.core.errors import PermissionDenied, ValidationFailed
from loudou.core.models import AuditEvent
from loudou.org.access import branch_subtree_ids, managed_branch_ids, manages_branch
from loudou.org.models import Target, TargetScope, User
from loudou.org.services import target_set, user_create, user_set_role
from loudou.playbooks.models import Role


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The org fixture creates nine users; hashing their passwords slowly is not under test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


MARCH = dt.date(2025, 3, 17)


def state() -> tuple[list[tuple], int]:
    targets = list(
        Target.objects.order_by("pk").values_list(
            "pk", "scope", "user", "branch", "month", "amount", "currency"
        )
    )
    return targets, AuditEvent.objects.count()


# --- targets -------------------------------------------------------------------------------


def test_a_manager_sets_a_sellers_monthly_target(org):
    target = target_set(actor=org["manager"], user=org["seller"], month=MARCH, amount="1,000,000")

    target.refresh_from_db()
    assert (target.scope, target.user, target.branch) == (TargetScope.USER, org["seller"], None)
    assert (target.month, target.amount, target.currency) == (
        dt.date(2025, 3, 1),
        Decimal("1000000.00"),
        "CNY",
    )
    event = AuditEvent.objects.latest("id")
    assert (event.action, event.actor, event.object_id) == (
        "target.set",
        org["manager"],
        str(target.pk),
    )
    assert event.after == {
        "scope": "user",
        "user": org["seller"].pk,
        "branch": None,
        "month": "2025-03-01",
        "amount": "1000000.00",
        "currency": "CNY",
    }
    assert event.before is None


def test_a_branch_target_and_a_company_target(org):
    branch = target_set(
        actor=org["north_manager"],
        branch=org["tianjin"],
        month=MARCH,
        amount=500000,
        currency="usd",
    )
    company = target_set(actor=org["admin"], month=dt.date(2025, 4, 30), amount="9000000")

    assert (branch.scope, branch.branch, branch.user, branch.month, branch.currency) == (
        "branch",
        org["tianjin"],
        None,
        dt.date(2025, 3, 1),
        "USD",
    )
    assert (company.scope, company.branch, company.user, company.month, company.amount) == (
        "company",
        None,
        None,
        dt.date(2025, 4, 1),
        Decimal("9000000.00"),
    )


def test_setting_a_target_again_updates_it_in_place(org):
    first = target_set(actor=org["manager"], user=org["seller"], month=MARCH, amount="1000000")
    second = target_set(
        actor=org["manager"], user=org["seller"], month=dt.date(2025, 3, 31), amount="1500000"
    )
    company_1 = target_set(actor=org["admin"], month=MARCH, amount="1")
    company_2 = target_set(actor=org["admin"], month=dt.date(2025, 3, 2), amount="2")

    assert second.pk == first.pk
    assert company_2.pk == company_1.pk
    assert list(Target.objects.order_by("scope").values_list("scope", "month", "amount")) == [
        ("company", dt.date(2025, 3, 1), Decimal("2.00")),
        ("user", dt.date(2025, 3, 1), Decimal("1500000.00")),
    ]
    april = target_set(
        actor=org["manager"], user=org["seller"], month=dt.date(2025, 4, 1), amount="1"
    )
    assert april.pk != first.pk
    assert Target.objects.count() == 3


def test_the_database_refuses_a_second_target_for_the_same_person_and_month(org):
    target_set(actor=org["manager"], user=org["seller"], month=MARCH, amount="1000000")

    with pytest.raises(IntegrityError), transaction.atomic():
        Target.objects.create(
            scope=TargetScope.USER,
            user=org["seller"],
            month=dt.date(2025, 3, 1),
            amount=Decimal("1"),
            currency="CNY",
        )
    assert Target.objects.count() == 1


@pytest.mark.parametrize(
    ("actor", "subject", "message"),
    [
        (
            "seller",
            {"user": "seller"},
            "Only a manager of this branch, an executive or an administrator may set targets.",
        ),
        (
            "teammate",
            {"user": "seller"},
            "Only a manager of this branch, an executive or an administrator may set targets.",
        ),
        (
            "manager",
            {"user": "tj_seller"},
            "Only a manager of this branch, an executive or an administrator may set targets.",
        ),
        (
            "manager",
            {"branch": "north"},
            "Only a manager of this branch, an executive or an administrator may set targets.",
        ),
        (
            "sh_manager",
            {"branch": "beijing"},
            "Only a manager of this branch, an executive or an administrator may set targets.",
        ),
        ("manager", {}, "Only an administrator may set the company's target."),
        ("north_manager", {}, "Only an administrator may set the company's target."),
    ],
)
def test_who_may_not_set_a_target(org, actor, subject, message):
    before = state()
    kwargs = {k: org[v] for k, v in subject.items()}

    with pytest.raises(PermissionDenied) as caught:
        target_set(actor=org[actor], month=MARCH, amount="1000", **kwargs)

    assert caught.value.message == message
    assert state() == before


@pytest.mark.parametrize(
    ("actor", "subject"),
    [
        ("manager", {"user": "seller"}),
        ("manager", {"user": "teammate"}),
        ("manager", {"branch": "beijing"}),
        ("north_manager", {"user": "tj_seller"}),
        ("north_manager", {"branch": "beijing"}),
        ("north_manager", {"branch": "north"}),
        ("executive", {"user": "sh_seller"}),
        ("admin", {"branch": "shanghai"}),
    ],
)
def test_who_may_set_a_target(org, actor, subject):
    kwargs = {k: org[v] for k, v in subject.items()}

    target = target_set(actor=org[actor], month=MARCH, amount="1000", **kwargs)

    assert Target.objects.get().pk == target.pk


@pytest.mark.parametrize(
    ("amount", "details"),
    [
        ("-1", {"amount": "negative"}),
        ("abc", {"amount": "not a number"}),
        (None, {"amount": "required"}),
    ],
)
def test_a_bad_target_amount_is_refused_and_nothing_changes(org, amount, details):
    target_set(actor=org["manager"], user=org["seller"], month=MARCH, amount="1000000")
    before = state()

    with pytest.raises(ValidationFailed) as caught:
        target_set(actor=org["manager"], user=org["seller"], month=MARCH, amount=amount)

    assert caught.value.details == details
    assert state() == before
    assert Target.objects.get().amount == Decimal("1000000.00")


def test_a_target_for_a_person_and_a_branch_at_once_is_refused(org):
    before = state()

    with pytest.raises(ValidationFailed):
        target_set(
            actor=org["admin"], user=org["seller"], branch=org["beijing"], month=MARCH, amount=1
        )

    assert state() == before


# --- roles ---------------------------------------------------------------------------------


def user_row(user: User) -> tuple:
    return User.objects.filter(pk=user.pk).values_list("job_role", "access_level", "branch").get()


def test_an_administrator_changes_a_users_role_and_it_is_audited(org):
    seller = org["seller"]
    manager_role = Role.objects.get(key="account_manager")
    presales = Role.objects.get(key="presales_consultant")

    user_set_role(
        actor=org["admin"],
        user=seller,
        job_role="presales_consultant",
        access_level="manager",
        branch=org["tianjin"],
    )

    assert user_row(seller) == (presales.pk, "manager", org["tianjin"].pk)
    event = AuditEvent.objects.latest("id")
    assert (event.action, event.actor, event.object_id) == (
        "user.role_change",
        org["admin"],
        str(seller.pk),
    )
    assert event.before == {
        "job_role": manager_role.pk,
        "access_level": "seller",
        "branch": org["beijing"].pk,
    }
    assert event.after == {
        "job_role": presales.pk,
        "access_level": "manager",
        "branch": org["tianjin"].pk,
    }


def test_only_an_administrator_changes_roles(org):
    before = (user_row(org["seller"]), AuditEvent.objects.count())

    for actor in ("manager", "north_manager", "executive", "seller"):
        with pytest.raises(PermissionDenied) as caught:
            user_set_role(actor=org[actor], user=org["seller"], access_level="admin")
        assert caught.value.message == "Only an administrator may change roles."

    assert (user_row(org["seller"]), AuditEvent.objects.count()) == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"job_role": "wizard"}, "Unknown role wizard."),
        ({"access_level": "emperor"}, "Unknown access level emperor."),
        (
            {"job_role": "product_expert", "access_level": "emperor"},
            "Unknown access level emperor.",
        ),
    ],
)
def test_an_unknown_role_or_level_is_refused_and_nothing_changes(org, change, message):
    before = (user_row(org["seller"]), AuditEvent.objects.count())

    with pytest.raises(ValidationFailed) as caught:
        user_set_role(actor=org["admin"], user=org["seller"], **change)

    assert caught.value.message == message
    assert (user_row(org["seller"]), AuditEvent.objects.count()) == before


# --- the branch tree -----------------------------------------------------------------------


def test_branch_subtree_ids(org):
    ids = {k: org[k].pk for k in ("company", "north", "beijing", "tianjin", "shanghai")}

    assert branch_subtree_ids(ids["company"]) == set(ids.values())
    assert branch_subtree_ids(ids["north"]) == {ids["north"], ids["beijing"], ids["tianjin"]}
    assert branch_subtree_ids(ids["beijing"]) == {ids["beijing"]}
    assert branch_subtree_ids(ids["shanghai"]) == {ids["shanghai"]}


def test_who_manages_which_branches(org):
    assert managed_branch_ids(org["seller"]) == set()
    assert managed_branch_ids(org["manager"]) == {org["beijing"].pk}
    assert managed_branch_ids(org["north_manager"]) == {
        org["north"].pk,
        org["beijing"].pk,
        org["tianjin"].pk,
    }
    assert managed_branch_ids(org["executive"]) is None
    assert managed_branch_ids(org["admin"]) is None
    assert manages_branch(org["north_manager"], org["tianjin"].pk) is True
    assert manages_branch(org["north_manager"], org["shanghai"].pk) is False
    assert manages_branch(org["manager"], None) is False
    assert manages_branch(org["executive"], None) is True


def test_user_create_takes_an_already_hashed_password(org):
    from django.contrib.auth.hashers import make_password

    from loudou.core.errors import ValidationFailed
    from loudou.org.models import User

    user = user_create(
        actor=None, username="imported", password="", password_hash=make_password("s3cret-Pass")
    )
    assert User.objects.get(pk=user.pk).check_password("s3cret-Pass")
    with pytest.raises(ValidationFailed):
        user_create(actor=None, username="broken", password="", password_hash="plain-text")
    assert not User.objects.filter(username="broken").exists()


def test_branch_update_renames_and_moves_but_never_into_its_own_subtree(org):
    from loudou.org.services import branch_update

    with pytest.raises(ValidationFailed):
        branch_update(actor=org["admin"], branch=org["north"], parent=org["beijing"])
    with pytest.raises(PermissionDenied):
        branch_update(actor=org["manager"], branch=org["beijing"], name="x")
    assert org["north"].__class__.objects.get(pk=org["north"].pk).parent == org["company"]

    moved = branch_update(
        actor=org["admin"], branch=org["tianjin"], name="天津分公司（新）", parent=org["company"]
    )
    assert (moved.name, moved.parent) == ("天津分公司（新）", org["company"])
    event = AuditEvent.objects.filter(action="branch.update").latest("at", "id")
    assert event.before["name"] == "天津分公司" and event.after["name"] == "天津分公司（新）"


def test_target_set_records_the_amount_before(org):
    import datetime as dt

    target_set(actor=org["manager"], user=org["seller"], month=dt.date(2026, 3, 1), amount="100")
    target_set(actor=org["manager"], user=org["seller"], month=dt.date(2026, 3, 9), amount="250")
    event = AuditEvent.objects.filter(action="target.set").latest("at", "id")
    assert (event.before["amount"], event.after["amount"]) == ("100.00", "250.00")
