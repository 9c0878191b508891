"""Quotes: preliminary (stage 5) and formal (stage 6), versioned, with lines per category."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from loudou.core.money import money_field


class QuoteKind(models.TextChoices):
    PRELIMINARY = "preliminary", _("Preliminary quote")
    FORMAL = "formal", _("Formal quote")


class QuoteLineCategory(models.TextChoices):
    SOFTWARE = "software", _("Software")
    IMPLEMENTATION = "implementation", _("Implementation")
    SERVICES = "services", _("Services")


class Quote(models.Model):
    """One version of a quote to the customer; a submitted quote is never edited, a new version
    is made instead."""

    opportunity = models.ForeignKey(
        "pipeline.Opportunity",
        verbose_name=_("opportunity"),
        on_delete=models.CASCADE,
        related_name="quotes",
    )
    kind = models.CharField(_("kind"), max_length=12, choices=QuoteKind.choices)
    version = models.PositiveIntegerField(_("version"))
    currency = models.CharField(_("currency"), max_length=3)
    notes = models.TextField(_("notes"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"))
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)

    class Meta:
        verbose_name = _("quote")
        verbose_name_plural = _("quotes")
        ordering = ["opportunity", "kind", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["opportunity", "kind", "version"], name="quote_version_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} v{self.version}"

    def totals(self) -> dict[str, Decimal]:
        """Net amount per category and in all (`total`)."""
        out = {c: Decimal("0.00") for c in QuoteLineCategory.values}
        for line in self.lines.all():
            out[line.category] += line.net_amount
        out["total"] = sum((out[c] for c in QuoteLineCategory.values), Decimal("0.00"))
        return out


class QuoteLine(models.Model):
    """One line of a quote: software licences, implementation days or services."""

    quote = models.ForeignKey(
        Quote, verbose_name=_("quote"), on_delete=models.CASCADE, related_name="lines"
    )
    category = models.CharField(_("category"), max_length=16, choices=QuoteLineCategory.choices)
    description = models.CharField(_("description"), max_length=200)
    quantity = models.DecimalField(_("quantity"), max_digits=12, decimal_places=2, default=1)
    unit_price = money_field(_("unit price"))
    discount_percent = models.DecimalField(
        _("discount (%)"), max_digits=5, decimal_places=2, default=0
    )

    class Meta:
        verbose_name = _("quote line")
        verbose_name_plural = _("quote lines")
        ordering = ["quote", "category", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="quote_line_quantity_positive"
            ),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0), name="quote_line_price_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(discount_percent__gte=0) & Q(discount_percent__lte=100),
                name="quote_line_discount_range",
            ),
        ]

    def __str__(self) -> str:
        return self.description

    @property
    def net_amount(self) -> Decimal:
        gross = self.quantity * self.unit_price
        return (gross * (100 - self.discount_percent) / 100).quantize(Decimal("0.01"))
