"""Money: Decimal amounts with a currency code; the installation has a base currency."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext as _

from loudou.core.errors import ValidationFailed

CENT = Decimal("0.01")


def base_currency() -> str:
    """The installation's base currency (LOUDOU_BASE_CURRENCY, CNY by default)."""
    return settings.LOUDOU_BASE_CURRENCY


def money_field(verbose_name: Any, **kwargs: Any) -> models.DecimalField:
    """A DecimalField sized for amounts up to 10^16 with cents."""
    return models.DecimalField(verbose_name, max_digits=18, decimal_places=2, **kwargs)


def parse_amount(
    value: object, *, field: str = "amount", allow_none: bool = False
) -> Decimal | None:
    """Turn user input into a non-negative Decimal with cents, or raise ValidationFailed."""
    if value is None or value == "":
        if allow_none:
            return None
        raise ValidationFailed(_("An amount is required."), details={field: _("required")})
    try:
        amount = Decimal(str(value).replace(",", "").strip())
    except InvalidOperation:
        raise ValidationFailed(
            _("“%(value)s” is not an amount.") % {"value": value},
            details={field: _("not a number")},
        ) from None
    if not amount.is_finite():
        raise ValidationFailed(_("An amount must be a finite number."), details={field: "nan"})
    if amount < 0:
        raise ValidationFailed(
            _("An amount cannot be negative (%(value)s).") % {"value": value},
            details={field: _("negative")},
        )
    # The size check comes first: quantize() itself fails on a number like 1e30.
    if amount >= Decimal("1e16"):
        raise ValidationFailed(_("The amount is too large."), details={field: _("too large")})
    amount = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    if amount >= Decimal("1e16"):  # 9999999999999999.995 rounds up to the limit
        raise ValidationFailed(_("The amount is too large."), details={field: _("too large")})
    return amount


def validate_currency(code: str) -> str:
    """Upper-case a three-letter ISO 4217 code or raise ValidationFailed."""
    code = (code or base_currency()).strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise ValidationFailed(
            _("“%(code)s” is not a three-letter currency code.") % {"code": code},
            details={"currency": _("invalid")},
        )
    return code
