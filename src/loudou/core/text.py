"""Checks on text before it reaches a column."""

from django.db import models
from django.utils.translation import gettext as _

from loudou.core.errors import ValidationFailed


def require_fits(obj: models.Model, *fields: str) -> None:
    """Refuse text longer than its column holds: PostgreSQL would refuse it with a DataError (a
    server error, not a message) and SQLite would keep it whole."""
    for name in fields:
        field = obj._meta.get_field(name)
        # Callers name the model's own text columns, never a reverse relation.
        assert isinstance(field, models.Field)
        value = getattr(obj, field.attname)
        limit = getattr(field, "max_length", None)
        if limit and isinstance(value, str) and len(value) > limit:
            raise ValidationFailed(
                _("%(field)s is longer than %(n)s characters.")
                % {"field": str(field.verbose_name).capitalize(), "n": limit},
                details={name: "too_long"},
            )
