"""Writes to accounts and contacts, and stage 1: qualifying an account against the ICP."""

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from loudou.core import clock
from loudou.core.audit import audit, snapshot
from loudou.core.errors import PermissionDenied, ValidationFailed
from loudou.core.money import parse_amount, validate_currency
from loudou.core.text import require_fits
from loudou.customers.credit_code import credit_code_problem
from loudou.customers.models import (
    Account,
    AccountQualification,
    Contact,
    Industry,
    SelectionPart,
    SizeBand,
)
from loudou.customers.selectors import icp_fit
from loudou.org.access import manages_branch, require_manager_of
from loudou.playbooks.models import Playbook
from loudou.playbooks.selectors import playbook_get

ACCOUNT_FIELDS = [
    "name",
    "credit_code",
    "industry",
    "size_band",
    "employees",
    "revenue",
    "revenue_currency",
    "parent",
    "organisations_count",
    "it_need",
    "product_fit",
    "owner",
    "branch",
    "is_target",
]
EDITABLE = set(ACCOUNT_FIELDS) - {"owner", "branch", "is_target"}


def normalise_credit_code(value: str | None) -> str | None:
    """Upper-case and strip a credit code, validate its check character; None when empty."""
    code = (value or "").strip().upper().replace(" ", "")
    if not code:
        return None
    problem = credit_code_problem(code)
    messages = {
        "length": _("A unified social credit code has 18 characters; “%(code)s” has %(n)s."),
        "characters": _(
            "“%(code)s” has characters a unified social credit code never uses (I, O, S, V, Z)."
        ),
        "check": _(
            "“%(code)s” is not a valid unified social credit code: its check character is wrong."
        ),
    }
    if problem:
        raise ValidationFailed(
            messages[problem] % {"code": code, "n": len(code)},
            details={"credit_code": problem},
        )
    return code


def _clean_account_fields(account: Account, data: dict[str, Any]) -> None:
    unknown = set(data) - EDITABLE
    if unknown:
        raise ValidationFailed(
            _("These fields cannot be set here: %(f)s.") % {"f": ", ".join(sorted(unknown))}
        )
    if "name" in data:
        name = (data["name"] or "").strip()
        if not name:
            raise ValidationFailed(_("An account needs a name."), details={"name": "required"})
        data["name"] = name
    if "credit_code" in data:
        data["credit_code"] = normalise_credit_code(data["credit_code"])
        dup = Account.objects.filter(credit_code=data["credit_code"]).exclude(pk=account.pk)
        if data["credit_code"] and dup.exists():
            raise ValidationFailed(
                _("Another account already has the credit code %(code)s.")
                % {"code": data["credit_code"]},
                details={"credit_code": "duplicate"},
            )
    if "industry" in data and isinstance(data["industry"], str):
        industry = Industry.objects.filter(key=data["industry"]).first()
        if industry is None:
            raise ValidationFailed(
                _("Unknown industry “%(key)s”.") % {"key": data["industry"]},
                details={"industry": "unknown"},
            )
        data["industry"] = industry
    if data.get("size_band") and data["size_band"] not in SizeBand.values:
        raise ValidationFailed(
            _("Size must be one of %(v)s.") % {"v": ", ".join(SizeBand.values)},
            details={"size_band": "invalid"},
        )
    if "revenue" in data:
        data["revenue"] = parse_amount(data["revenue"], field="revenue", allow_none=True)
    if data.get("revenue_currency"):
        data["revenue_currency"] = validate_currency(data["revenue_currency"])
    for number in ("employees", "organisations_count"):
        if number not in data:
            continue
        if data[number] is None or data[number] == "":
            data[number] = None if number == "employees" else 1
            continue
        try:
            data[number] = int(data[number])
        except (TypeError, ValueError):
            raise ValidationFailed(
                _("%(f)s must be a whole number, not “%(v)s”.") % {"f": number, "v": data[number]},
                details={number: "not_a_number"},
            ) from None
        if data[number] < 0:
            raise ValidationFailed(
                _("%(f)s cannot be negative.") % {"f": number}, details={number: "negative"}
            )
    if "parent" in data:
        _check_parent(account, data["parent"])


def _check_parent(account: Account, parent: Account | None) -> None:
    """Refuse a parent that would make the group hierarchy a cycle."""
    if parent is None or account.pk is None:
        return
    seen = set()
    current: Account | None = parent
    while current is not None:
        if current.pk == account.pk:
            raise ValidationFailed(
                _(
                    "%(parent)s cannot be the group of %(account)s: %(account)s is already above "
                    "it in the group hierarchy."
                )
                % {"parent": parent, "account": account},
                details={"parent": "cycle"},
            )
        if current.pk in seen:  # an existing cycle; never created by these services
            break
        seen.add(current.pk)
        current = current.parent


@transaction.atomic
def account_create(*, actor: Any, owner: Any = None, **data: Any) -> Account:
    """Create an account owned by `owner` (default the actor), then qualify it against the ICP."""
    owner = owner or actor
    if owner.pk != actor.pk:
        require_manager_of(actor, owner.branch_id, _("create accounts for someone else"))
    now = clock.now()
    account = Account(owner=owner, branch_id=owner.branch_id, created_at=now, updated_at=now)
    data.setdefault("organisations_count", 1)
    _clean_account_fields(account, data)
    for key, value in data.items():
        setattr(account, key, value)
    require_fits(account, "name")
    account.save()
    audit("account.create", account, actor=actor, after=snapshot(account, ACCOUNT_FIELDS))
    account_qualify(account=account, actor=actor)
    _requalify_groups({account.parent_id}, actor=actor)
    return account


def _requalify_groups(parent_ids: set[int | None], *, actor: Any) -> None:
    """A subsidiary joining or leaving a group changes the group's "several organisations"
    criterion: qualify the groups again."""
    for parent in Account.objects.filter(pk__in={p for p in parent_ids if p}):
        account_qualify(account=parent, actor=actor)


@transaction.atomic
def account_update(*, account: Account, actor: Any, **data: Any) -> Account:
    """Change an account's fields and re-qualify it; the owner, a manager or an admin may."""
    account = Account.objects.select_for_update().get(pk=account.pk)
    _require_account_editor(account, actor)
    _clean_account_fields(account, data)
    before = snapshot(account, ACCOUNT_FIELDS)
    old_parent_id = account.parent_id
    for key, value in data.items():
        setattr(account, key, value)
    account.updated_at = clock.now()
    require_fits(account, "name")
    account.save()
    if account.parent_id != old_parent_id:
        _requalify_groups({old_parent_id, account.parent_id}, actor=actor)
    audit(
        "account.update",
        account,
        actor=actor,
        before=before,
        after=snapshot(account, ACCOUNT_FIELDS),
    )
    account_qualify(account=account, actor=actor)
    return account


def _require_account_editor(account: Account, actor: Any) -> None:
    if account.owner_id != actor.pk and not manages_branch(actor, account.branch_id):
        raise PermissionDenied(_("Only the account's owner or a manager may change it."))


@transaction.atomic
def account_qualify(
    *,
    account: Account,
    actor: Any,
    playbook: Playbook | None = None,
    override: bool | None = None,
    reason: str = "",
) -> AccountQualification:
    """Stage 1: evaluate the ICP criteria and record the verdict; a manager may override it."""
    playbook = playbook or playbook_get()
    results = icp_fit(account, playbook)
    computed = all(r["holds"] for r in results if r["required"])
    if override is not None:
        require_manager_of(actor, account.branch_id, _("override an account's qualification"))
        if not reason.strip():
            raise ValidationFailed(_("An override needs a reason."), details={"reason": "required"})
    latest = account.qualifications.order_by("-at", "-id").first()
    # A manager's verdict stands until a manager changes it again.
    sticky = override is None and latest is not None and latest.overridden
    if override is not None:
        is_target = override
    elif sticky and latest is not None:
        is_target = latest.is_target
    else:
        is_target = computed
    qualification = AccountQualification.objects.create(
        account=account,
        playbook=playbook,
        at=clock.now(),
        is_target=is_target,
        results=results,
        overridden=override is not None or sticky,
        reason=reason,
        actor=actor if getattr(actor, "pk", None) else None,
    )
    if account.is_target != is_target:
        Account.objects.filter(pk=account.pk).update(is_target=is_target)
        account.is_target = is_target
    if override is not None or (latest is None or latest.is_target != is_target):
        audit(
            "account.qualify",
            account,
            actor=actor,
            before={"is_target": latest.is_target if latest else None},
            after={"is_target": is_target, "overridden": override is not None},
            reason=reason,
        )
    return qualification


@transaction.atomic
def contact_create(
    *,
    account: Account,
    actor: Any,
    name: str,
    title: str = "",
    phone: str = "",
    email: str = "",
    selection_part: str = "",
) -> Contact:
    """Add a contact to an account, with their part in the selection team."""
    _require_account_editor(account, actor)
    if not name.strip():
        raise ValidationFailed(_("A contact needs a name."), details={"name": "required"})
    if selection_part not in SelectionPart.values:
        raise ValidationFailed(
            _("Unknown part in the selection team: %(v)s.") % {"v": selection_part},
            details={"selection_part": "invalid"},
        )
    contact = Contact(
        account=account,
        name=name.strip(),
        title=title.strip(),
        phone=phone.strip(),
        email=email.strip(),
        selection_part=selection_part,
    )
    require_fits(contact, "name", "title", "phone", "email")
    contact.save()
    audit(
        "contact.create",
        contact,
        actor=actor,
        after=snapshot(contact, ["account", "name", "title", "selection_part"]),
    )
    return contact


@transaction.atomic
def contact_update(*, contact: Contact, actor: Any, **data: Any) -> Contact:
    """Change a contact's name, title, phone, email or selection part."""
    _require_account_editor(contact.account, actor)
    allowed = {"name", "title", "phone", "email", "selection_part"}
    if set(data) - allowed:
        raise ValidationFailed(
            _("These fields cannot be set here: %(f)s.") % {"f": set(data) - allowed}
        )
    data = {k: (v or "").strip() for k, v in data.items()}
    if "name" in data and not data["name"]:
        raise ValidationFailed(_("A contact needs a name."), details={"name": "required"})
    if data.get("selection_part", "") not in SelectionPart.values:
        raise ValidationFailed(
            _("Unknown part in the selection team."), details={"selection_part": "invalid"}
        )
    fields = sorted(allowed)
    before = snapshot(contact, fields)
    for key, value in data.items():
        setattr(contact, key, value)
    require_fits(contact, "name", "title", "phone", "email")
    contact.save()
    audit("contact.update", contact, actor=actor, before=before, after=snapshot(contact, fields))
    return contact
