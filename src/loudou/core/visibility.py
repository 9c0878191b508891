"""The one visibility rule (DESIGN.md rule 4), as a queryset mixin every model reads through.

A seller sees what they own and what they are on the project team of; a manager sees their
branch and the branches below it; executives and administrators see everything.
"""

from typing import Any

from django.db import models
from django.db.models import Q


class VisibleQuerySet(models.QuerySet):
    """Subclasses name the paths to the owner, the branch and the team members."""

    owner_field: str = "owner"
    branch_field: str = "branch"
    team_path: str | None = None

    def visible_to(self, user: Any) -> "VisibleQuerySet":
        """Only the rows `user` may see; anonymous or inactive users see nothing."""
        from loudou.org.access import managed_branch_ids

        if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        managed = managed_branch_ids(user)
        if managed is None:
            return self
        rule = Q(**{self.owner_field: user.pk})
        if self.team_path:
            team_ids = self.model._default_manager.filter(**{self.team_path: user.pk}).values("pk")
            rule |= Q(pk__in=team_ids)
        if managed:
            rule |= Q(**{f"{self.branch_field}__in": managed})
        return self.filter(rule)

    def can_see(self, user: Any, obj: Any) -> bool:
        """The same rule for one loaded object: owner and branch are read from the instance, so
        only a team member costs a query. Equivalent to `visible_to(user).filter(pk=...)`."""
        from loudou.org.access import managed_branch_ids

        if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
            return False
        managed = managed_branch_ids(user)
        if managed is None:
            return True
        if _attr_path(obj, self.owner_field) == user.pk:
            return True
        if managed and _attr_path(obj, self.branch_field) in managed:
            return True
        if self.team_path:
            return self.model._default_manager.filter(
                pk=obj.pk, **{self.team_path: user.pk}
            ).exists()
        return False


def _attr_path(obj: Any, path: str) -> Any:
    """`owner` → obj.owner_id; `opportunity__owner` → obj.opportunity.owner_id."""
    *parents, last = path.split("__")
    for name in parents:
        obj = getattr(obj, name)
    return getattr(obj, f"{last}_id")
