"""Who manages what: the branch tree below a manager, and the checks services make."""

from django.utils.translation import gettext as _

from loudou.core.errors import PermissionDenied
from loudou.org.models import AccessLevel, Branch, User


def branch_subtree_ids(branch_id: int) -> set[int]:
    """The ids of a branch and every branch below it."""
    children: dict[int | None, list[int]] = {}
    for pk, parent_id in Branch.objects.values_list("pk", "parent_id"):
        children.setdefault(parent_id, []).append(pk)
    found, todo = set(), [branch_id]
    while todo:
        current = todo.pop()
        if current in found:
            continue
        found.add(current)
        todo.extend(children.get(current, []))
    return found


def managed_branch_ids(user: User) -> set[int] | None:
    """Branches a user manages: None means all (executives, admins); empty for sellers.

    Within a web request the answer is kept on the user (the middleware gives request.user a
    `_managed_memo` dict): a page asks it once per visible_to() and the branch tree does not
    change under a request."""
    if user.sees_everything:
        return None
    if user.level != AccessLevel.MANAGER or not user.branch_id:
        return set()
    memo = getattr(user, "_managed_memo", None)
    if memo is not None and user.branch_id in memo:
        return memo[user.branch_id]
    found = branch_subtree_ids(user.branch_id)
    if memo is not None:
        memo[user.branch_id] = found
    return found


def manages_branch(user: User, branch_id: int | None) -> bool:
    """True if `user` is a manager over `branch_id` (or sees everything)."""
    managed = managed_branch_ids(user)
    if managed is None:
        return True
    return branch_id is not None and branch_id in managed


def require_manager_of(user: User, branch_id: int | None, what: str) -> None:
    """Raise PermissionDenied unless `user` manages `branch_id`; `what` names the action."""
    if not manages_branch(user, branch_id):
        raise PermissionDenied(
            _("Only a manager of this branch, an executive or an administrator may %(what)s.")
            % {"what": what}
        )
