"""The admin's organisation forms go through the org services (DESIGN.md rule 1): branches (never
below their own branches), monthly targets, users and their roles, each audited."""

import datetime as dt
from decimal import Decimal
from typing import Any

from loudou.core.models import AuditEvent
from loudou.org.models import Branch, Target
from tests.admin.conftest import admin_url, post_data

# --- the organisation -------------------------------------------------------------------------


def test_a_branch_is_created_through_branch_create(staff: Any, org: dict[str, Any]) -> None:
    response = staff.post(
        admin_url(Branch, "add"),
        {"code": "gz", "name": "广州分公司", "name_en": "Guangzhou", "parent": org["company"].pk},
    )
    assert response.status_code == 302
    branch = Branch.objects.get(code="gz")
    assert (branch.parent, branch.name) == (org["company"], "广州分公司")
    assert AuditEvent.objects.filter(action="branch.create", object_id=str(branch.pk)).exists()


def test_a_branch_cannot_move_below_its_own_branches(staff: Any, org: dict[str, Any]) -> None:
    north = org["north"]
    page = staff.get(admin_url(Branch, "change", north.pk))
    response = staff.post(
        admin_url(Branch, "change", north.pk), post_data(page, parent=org["beijing"].pk)
    )
    assert response.status_code == 200
    assert "parent" in response.context["adminform"].form.errors
    north.refresh_from_db()
    assert north.parent == org["company"]


def test_a_target_is_set_through_target_set(staff: Any, org: dict[str, Any]) -> None:
    response = staff.post(
        admin_url(Target, "add"),
        {
            "branch": org["beijing"].pk,
            "month": "2025-03-15",
            "amount": "3000000",
            "currency": "cny",
        },
    )
    assert response.status_code == 302
    target = Target.objects.get()
    assert (target.scope, target.month, target.amount, target.currency) == (
        "branch",
        dt.date(2025, 3, 1),
        Decimal("3000000.00"),
        "CNY",
    )
    assert AuditEvent.objects.filter(action="target.set", actor=org["admin"]).count() == 1


def test_a_role_change_goes_through_user_set_role(staff: Any, org: dict[str, Any]) -> None:
    seller = org["seller"]
    page = staff.get(admin_url(type(seller), "change", seller.pk))

    response = staff.post(
        admin_url(type(seller), "change", seller.pk),
        post_data(page, access_level="manager", display_name="小王"),
    )

    assert response.status_code == 302
    seller.refresh_from_db()
    assert (seller.access_level, seller.display_name) == ("manager", "小王")
    change = AuditEvent.objects.get(action="user.role_change", object_id=str(seller.pk))
    assert (change.before["access_level"], change.after["access_level"]) == ("seller", "manager")
    update = AuditEvent.objects.get(action="user.update", object_id=str(seller.pk))
    assert update.after == {"display_name": "小王"}


def test_a_user_is_created_through_user_create(staff: Any, org: dict[str, Any]) -> None:
    user_model = type(org["seller"])
    response = staff.post(
        admin_url(user_model, "add"),
        {
            "username": "newcomer",
            "usable_password": "true",
            "password1": "a-Long-pass-2025",
            "password2": "a-Long-pass-2025",
        },
    )
    assert response.status_code == 302
    user = user_model.objects.get(username="newcomer")
    assert user.check_password("a-Long-pass-2025")
    assert (user.access_level, user.is_staff) == ("seller", False)
    event = AuditEvent.objects.get(action="user.create", object_id=str(user.pk))
    assert event.actor == org["admin"]
