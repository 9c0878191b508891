"""Small reads the API needs that the domain selectors do not offer; all through the
visibility rule."""

from typing import Any

from django.utils.translation import gettext as _

from loudou.core.errors import NotFound, ValidationFailed
from loudou.customers.models import Account, Contact, Industry
from loudou.customers.selectors import account_group_tree
from loudou.org.access import branch_subtree_ids
from loudou.org.models import Branch, User


def account_get(user: Any, pk: int) -> Account:
    """One account `user` may see, or NotFound."""
    found = (
        Account.objects.visible_to(user)
        .select_related("industry", "owner", "branch")
        .filter(pk=pk)
        .first()
    )
    if found is None:
        raise NotFound(_("No such account."))
    return found


def contact_get(user: Any, pk: int, *, account_id: int | None = None) -> Contact:
    """One contact of an account `user` may see (of `account_id` if given), or NotFound."""
    qs = Contact.objects.filter(pk=pk, account__in=Account.objects.visible_to(user))
    if account_id is not None:
        qs = qs.filter(account_id=account_id)
    found = qs.select_related("account").first()
    if found is None:
        raise NotFound(_("No such contact."))
    return found


def visible_group(user: Any, account: Account) -> list[dict[str, Any]]:
    """The account's group tree from its top, keeping only the accounts `user` may see."""
    tree = account_group_tree(account)
    visible = set(
        Account.objects.visible_to(user)
        .filter(pk__in=[a.pk for _d, a in tree])
        .values_list("pk", flat=True)
    )
    return [{"depth": d, "id": a.pk, "name": a.name} for d, a in tree if a.pk in visible]


def user_by_id(pk: int | None, *, field: str) -> User | None:
    """An active user by id for a write (owner, team member), or ValidationFailed on `field`."""
    if pk is None:
        return None
    found = User.objects.filter(pk=pk, is_active=True).select_related("branch").first()
    if found is None:
        raise ValidationFailed(
            _("No active user with id %(id)s.") % {"id": pk}, details={field: "unknown"}
        )
    return found


def account_for_write(user: Any, pk: int, *, field: str) -> Account:
    """An account `user` may see, named in a request body; ValidationFailed on `field` otherwise."""
    found = Account.objects.visible_to(user).filter(pk=pk).first()
    if found is None:
        raise ValidationFailed(
            _("No such account: %(id)s.") % {"id": pk}, details={field: "unknown"}
        )
    return found


def branch_ids_for(code: str | None) -> set[int] | None:
    """The branch with `code` and those below it (None: no filter), or ValidationFailed."""
    if not code:
        return None
    branch = Branch.objects.filter(code=code).first()
    if branch is None:
        raise ValidationFailed(
            _("No branch with code “%(code)s”.") % {"code": code}, details={"branch": "unknown"}
        )
    return branch_subtree_ids(branch.pk)


def industry_id_for(key: str | None) -> int | None:
    """The id of the industry with `key` (None: no filter), or ValidationFailed."""
    if not key:
        return None
    found = Industry.objects.filter(key=key).values_list("pk", flat=True).first()
    if found is None:
        raise ValidationFailed(
            _("No industry “%(key)s”.") % {"key": key}, details={"industry": "unknown"}
        )
    return found


def user_id_for(username: str | None, *, field: str = "owner") -> int | None:
    """The id of the user named `username` (None: no filter), or ValidationFailed."""
    if not username:
        return None
    found = User.objects.filter(username=username).values_list("pk", flat=True).first()
    if found is None:
        raise ValidationFailed(
            _("No user named “%(name)s”.") % {"name": username}, details={field: "unknown"}
        )
    return found
