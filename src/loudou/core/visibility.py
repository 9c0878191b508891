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
