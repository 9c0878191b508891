"""The admin's account and contact forms go through the customers services (DESIGN.md rule 1):
the services' editable fields, the ICP fit shown, an invalid credit code said and nothing
changed, each edit or addition audited."""

from typing import Any

from loudou.core.models import AuditEvent
from loudou.customers.models import Account, Contact
from loudou.customers.services import EDITABLE
from tests.admin.conftest import admin_url, post_data

# --- accounts and contacts --------------------------------------------------------------------


def test_account_form_fields_are_the_services_editable_fields() -> None:
    from loudou.customers.admin import EDITABLE_ORDER

    assert set(EDITABLE_ORDER) == EDITABLE


def test_the_account_page_shows_the_icp_fit(staff: Any, account: Account) -> None:
    page = staff.get(admin_url(Account, "change", account.pk)).content.decode()
    assert "ICP fit" in page
    assert "✓" in page
    assert "In a target industry" in page


def test_an_invalid_credit_code_is_shown_and_changes_nothing(staff: Any, account: Account) -> None:
    page = staff.get(admin_url(Account, "change", account.pk))
    stored = Account.objects.filter(pk=account.pk).values().get()
    events = AuditEvent.objects.count()

    response = staff.post(
        admin_url(Account, "change", account.pk),
        post_data(page, credit_code="91110000000000000X", name="Renamed"),
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "check character is wrong" in errors["credit_code"][0]
    assert Account.objects.filter(pk=account.pk).values().get() == stored
    assert AuditEvent.objects.count() == events


def test_editing_an_account_goes_through_account_update(
    staff: Any, account: Account, org: dict[str, Any]
) -> None:
    page = staff.get(admin_url(Account, "change", account.pk))
    qualifications = account.qualifications.count()

    response = staff.post(
        admin_url(Account, "change", account.pk), post_data(page, employees="5000")
    )

    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.employees, account.owner) == (5000, org["seller"])
    event = AuditEvent.objects.filter(action="account.update").get()
    assert (event.actor, event.before["employees"], event.after["employees"]) == (
        org["admin"],
        None,
        5000,
    )
    assert account.qualifications.count() == qualifications + 1


def test_adding_an_account_goes_through_account_create(
    staff: Any, org: dict[str, Any], playbook: Any
) -> None:
    response = staff.post(
        admin_url(Account, "add"),
        {
            "name": "  华东制造集团 ",
            "credit_code": "",
            "size_band": "large",
            "organisations_count": "3",
            "it_need": "",
            "product_fit": "",
            "revenue_currency": "",
            "owner": "",
        },
    )
    assert response.status_code == 302
    created = Account.objects.get(name="华东制造集团")
    assert (created.owner, created.branch, created.credit_code) == (
        org["admin"],
        org["company"],
        None,
    )
    assert AuditEvent.objects.filter(action="account.create", object_id=str(created.pk)).exists()
    assert created.qualifications.count() == 1


def test_editing_a_contact_goes_through_contact_update(
    staff: Any, account: Account, org: dict[str, Any]
) -> None:
    contact = Contact.objects.get(account=account)
    page = staff.get(admin_url(Contact, "change", contact.pk))

    response = staff.post(admin_url(Contact, "change", contact.pk), post_data(page, title="CFO"))

    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.title == "CFO"
    event = AuditEvent.objects.get(action="contact.update")
    assert (event.actor, event.before["title"], event.after["title"]) == (
        org["admin"],
        "CIO",
        "CFO",
    )
