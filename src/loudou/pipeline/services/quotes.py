"""Quotes: versions of a preliminary or formal quote, with lines per category."""

from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from loudou.core import clock
from loudou.core.audit import audit
from loudou.core.errors import NotFound, ValidationFailed
from loudou.core.money import parse_amount, validate_currency
from loudou.pipeline.models import Opportunity, Quote, QuoteKind, QuoteLine, QuoteLineCategory
from loudou.pipeline.services._base import lock, require_editor, require_open


def _decimal(value: Any, field: str, row: int) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationFailed(
            _("Line %(n)s: %(f)s is not a number.") % {"n": row, "f": field},
            details={f"lines[{row}].{field}": "invalid"},
        ) from None


def _clean_lines(lines: list[dict[str, Any]]) -> list[QuoteLine]:
    if not lines:
        raise ValidationFailed(_("A quote needs at least one line."), details={"lines": "required"})
    out = []
    for n, line in enumerate(lines, start=1):
        category = line.get("category")
        if category not in QuoteLineCategory.values:
            raise ValidationFailed(
                _("Line %(n)s: the category must be software, implementation or services.")
                % {"n": n},
                details={f"lines[{n}].category": "invalid"},
            )
        description = (line.get("description") or "").strip()
        if not description:
            raise ValidationFailed(
                _("Line %(n)s needs a description.") % {"n": n},
                details={f"lines[{n}].description": "required"},
            )
        quantity = _decimal(line.get("quantity", 1), "quantity", n)
        discount = _decimal(line.get("discount_percent", 0), "discount_percent", n)
        if quantity <= 0:
            raise ValidationFailed(
                _("Line %(n)s: the quantity must be positive.") % {"n": n},
                details={f"lines[{n}].quantity": "not_positive"},
            )
        if not 0 <= discount <= 100:
            raise ValidationFailed(
                _("Line %(n)s: the discount is between 0 and 100 %%.") % {"n": n},
                details={f"lines[{n}].discount_percent": "range"},
            )
        out.append(
            QuoteLine(
                category=category,
                description=description[:200],
                quantity=quantity,
                unit_price=parse_amount(line.get("unit_price"), field=f"lines[{n}].unit_price"),
                discount_percent=discount,
            )
        )
    return out


@transaction.atomic
def quote_create(
    *,
    opportunity: Opportunity | int,
    actor: Any,
    kind: str,
    lines: list[dict[str, Any]],
    currency: str = "",
    notes: str = "",
    submit: bool = False,
) -> Quote:
    """Make the next version of the opportunity's preliminary or formal quote; `submit` sends it."""
    opp = lock(opportunity, actor, None)
    require_open(opp)
    require_editor(opp, actor)
    if kind not in QuoteKind.values:
        raise ValidationFailed(_("A quote is preliminary or formal."), details={"kind": "invalid"})
    clean = _clean_lines(lines)
    latest = opp.quotes.filter(kind=kind).aggregate(v=Max("version"))["v"] or 0
    now = clock.now()
    quote = Quote.objects.create(
        opportunity=opp,
        kind=kind,
        version=latest + 1,
        currency=validate_currency(currency or opp.currency),
        notes=notes.strip(),
        created_by=actor,
        created_at=now,
        submitted_at=now if submit else None,
    )
    for line in clean:
        line.quote = quote
    QuoteLine.objects.bulk_create(clean)
    totals = quote.totals()
    audit(
        "quote.create",
        quote,
        actor=actor,
        after={
            "kind": kind,
            "version": quote.version,
            "total": str(totals["total"]),
            "submitted": submit,
        },
    )
    return quote


@transaction.atomic
def quote_submit(*, quote: Quote | int, actor: Any) -> Quote:
    """Mark a quote as submitted to the customer; it cannot change after that."""
    pk = quote if isinstance(quote, int) else quote.pk
    found = Quote.objects.filter(
        pk=pk, opportunity__in=Opportunity.objects.visible_to(actor)
    ).first()
    if found is None:
        raise NotFound(_("No such quote."))
    opp = lock(found.opportunity_id, actor, None)
    require_open(opp)
    require_editor(opp, actor)
    if found.submitted_at is not None:
        raise ValidationFailed(_("This quote was already submitted; make a new version instead."))
    found.submitted_at = clock.now()
    found.save(update_fields=["submitted_at"])
    audit(
        "quote.submit", found, actor=actor, after={"submitted_at": found.submitted_at.isoformat()}
    )
    return found
