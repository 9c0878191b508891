"""Template filters for money, bilingual playbook texts and durations."""

import datetime as dt
from decimal import Decimal
from typing import Any

from django import template
from django.utils import timezone
from django.utils.translation import gettext as _

from loudou.core import clock
from loudou.core.i18n import is_chinese, localized

register = template.Library()

SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€", "HKD": "HK$", "JPY": "JP¥", "GBP": "£"}


def _symbol(currency: str | None) -> str:
    if not currency:
        return ""
    return SYMBOLS.get(currency, f"{currency} ")


@register.filter
def money(amount: Any, currency: str | None = "CNY") -> str:
    """¥1,234,500 — whole amounts without decimals, others with two."""
    if amount is None or amount == "":
        return "—"
    value = Decimal(amount)
    shown = f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,.2f}"
    return f"{_symbol(currency)}{shown}"


@register.filter
def money_short(amount: Any, currency: str | None = "CNY") -> str:
    """Compact amounts for headers and cards: 123.4万 / 1.23亿 in Chinese, 123K / 1.23M in
    English — the units each language's sellers count in."""
    if amount is None or amount == "":
        return "—"
    value = Decimal(amount)
    symbol = _symbol(currency)
    if is_chinese():
        if abs(value) >= 100_000_000:
            return f"{symbol}{value / 100_000_000:,.2f}亿"
        if abs(value) >= 10_000:
            return f"{symbol}{value / 10_000:,.1f}万"
        return f"{symbol}{value:,.0f}"
    if abs(value) >= 1_000_000:
        return f"{symbol}{value / 1_000_000:,.2f}M"
    if abs(value) >= 1_000:
        return f"{symbol}{value / 1_000:,.0f}K"
    return f"{symbol}{value:,.0f}"


@register.filter
def loc(obj: Any, field: str) -> str:
    """A bilingual field in the active language: {{ stage|loc:"name" }}."""
    if obj is None:
        return ""
    if not hasattr(obj, f"{field}_zh"):
        # Branches keep their Chinese name in `name` and an optional `name_en`.
        english = getattr(obj, f"{field}_en", "")
        return english if english and not is_chinese() else getattr(obj, field, "")
    return localized(obj, field)


@register.filter
def days_since(moment: Any) -> int | None:
    """Whole days from a date or datetime until now."""
    if moment is None:
        return None
    if isinstance(moment, dt.datetime):
        return (clock.now() - moment).days
    return (clock.today() - moment).days


@register.filter
def days_until(day: Any) -> int | None:
    """Whole days from today until a date (negative when past)."""
    if day is None:
        return None
    return (day - clock.today()).days


@register.filter
def is_past(day: Any) -> bool:
    """True for a date before today (an overdue close date or activity)."""
    if day is None:
        return False
    if isinstance(day, dt.datetime):
        return day < clock.now()
    return bool(day < clock.today())


@register.filter
def local_dt(moment: Any) -> str:
    """A moment in the user's time zone, to the minute."""
    if moment is None:
        return "—"
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}"


@register.simple_tag
def percent(part: Any, whole: Any) -> str:
    """part / whole as a whole percentage, or — when there is no whole."""
    if not whole:
        return "—"
    return f"{100 * Decimal(part) / Decimal(whole):.0f}%"


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    """mapping[key] in a template; None when missing."""
    if mapping is None:
        return None
    return mapping.get(key)


@register.simple_tag
def yes_no(value: Any) -> str:
    return _("Yes") if value else _("No")
