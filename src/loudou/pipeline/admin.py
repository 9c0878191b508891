"""Admin for the pipeline.

Opportunities are created from the web UI or the CLI and change stage only through the stage
operations (DESIGN.md rule 2): here their editable fields save through `opportunity_update`
with the version the form showed. History, evidence and overrides are append-only; the project
work around a deal is shown read-only (its services need the context of the opportunity page);
立项 requests may be decided from the list. Lost reasons and competitors are audited catalogues.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.text import capfirst
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from loudou.core.admin import (
    CatalogueAdmin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    ServiceAdmin,
    changed_values,
    pretty_json,
)
from loudou.core.errors import LoudouError
from loudou.pipeline.models import (
    Activity,
    Competitor,
    CriterionEvidence,
    GateOverride,
    KeyDate,
    LostReason,
    Objection,
    Opportunity,
    OpportunityCompetitor,
    OpportunityHistory,
    ProjectApproval,
    Quote,
    QuoteLine,
    Status,
    TeamMember,
)
from loudou.pipeline.services import approval_decide, opportunity_update
from loudou.pipeline.services.opportunities import UPDATABLE
from loudou.playbooks.models import ForecastCategory

# --- catalogues -------------------------------------------------------------------------------


@admin.register(LostReason)
class LostReasonAdmin(CatalogueAdmin):
    list_display = ("order", "key", "name_zh", "name_en", "active")
    list_filter = ("active",)
    search_fields = ("key", "name_zh", "name_en")
    ordering = ("order", "key")


@admin.register(Competitor)
class CompetitorAdmin(CatalogueAdmin):
    list_display = ("name", "kind")
    list_filter = ("kind",)
    search_fields = ("name",)
    ordering = ("name",)


# --- the opportunity and what hangs off it -----------------------------------------------------


class HistoryInline(ReadOnlyInline):
    model = OpportunityHistory
    fields = (
        "valid_from",
        "action",
        "stage",
        "status",
        "amount",
        "currency",
        "close_date",
        "probability",
        "owner",
        "forecast_category",
        "actor",
        "changed",
        "reason",
    )
    readonly_fields = fields
    ordering = ("valid_from", "id")
    select_related = ("stage", "owner", "actor")


class EvidenceInline(ReadOnlyInline):
    model = CriterionEvidence
    fields = ("recorded_at", "criterion", "satisfied", "note", "actor")
    readonly_fields = fields
    ordering = ("-recorded_at", "-id")
    select_related = ("criterion", "actor")


class OverrideInline(ReadOnlyInline):
    model = GateOverride
    fields = ("at", "stage", "actor", "reason", "missing")
    readonly_fields = fields
    ordering = ("-at", "-id")
    select_related = ("stage", "actor")


class TeamMemberInline(ReadOnlyInline):
    model = TeamMember
    fields = ("user", "role", "added_at")
    readonly_fields = fields
    ordering = ("role__order", "id")
    select_related = ("user", "role")


class CompetitorInline(ReadOnlyInline):
    model = OpportunityCompetitor
    fields = ("competitor", "active", "notes")
    readonly_fields = fields
    ordering = ("competitor__name",)
    select_related = ("competitor",)


class KeyDateInline(ReadOnlyInline):
    model = KeyDate
    fields = ("kind", "label", "planned", "actual")
    readonly_fields = fields
    ordering = ("planned", "id")


class QuoteInline(ReadOnlyInline):
    model = Quote
    fields = ("kind", "version", "currency", "total", "created_by", "created_at", "submitted_at")
    readonly_fields = fields
    ordering = ("kind", "-version")
    select_related = ("created_by",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("lines")

    @admin.display(description=_("total"))
    def total(self, obj: Quote) -> Any:
        return obj.totals()["total"]


class ObjectionInline(ReadOnlyInline):
    model = Objection
    fields = ("raised_at", "text", "raised_by", "status", "answer", "answered_by", "answered_at")
    readonly_fields = fields
    ordering = ("raised_at", "id")
    select_related = ("raised_by", "answered_by")


class ActivityInline(ReadOnlyInline):
    model = Activity
    fields = ("due_on", "kind", "subject", "owner", "done_at", "outcome")
    readonly_fields = fields
    ordering = ("due_on", "id")
    select_related = ("owner",)


class ApprovalInline(ReadOnlyInline):
    model = ProjectApproval
    fields = ("requested_at", "requested_by", "status", "budget", "decided_by", "decided_at")
    readonly_fields = fields
    ordering = ("-requested_at", "-id")
    select_related = ("requested_by", "decided_by")


class OpportunityForm(forms.ModelForm):
    """The editable fields, and the version the user saw (optimistic concurrency)."""

    expected_version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)

    class Meta:
        model = Opportunity
        fields = sorted(UPDATABLE)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["expected_version"].initial = self.instance.version


@admin.register(Opportunity)
class OpportunityAdmin(ServiceAdmin):
    """Edits go through `opportunity_update`; stage and status change only on the opportunity
    page, through the stage operations."""

    form = OpportunityForm
    list_display = (
        "name",
        "account",
        "owner",
        "branch",
        "playbook",
        "stage",
        "status",
        "amount",
        "currency",
        "close_date",
        "version",
    )
    list_filter = ("status", "playbook", "stage", "branch", "close_date")
    search_fields = ("name", "account__name", "owner__username", "owner__display_name", "source")
    list_select_related = ("account", "owner", "branch", "playbook", "stage")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    fieldsets = (
        (None, {"fields": ("name", "account", "need", "source", "owner", "branch")}),
        (
            capfirst(_("stage")),
            {
                "fields": (
                    "playbook",
                    "stage",
                    "status",
                    "stage_entered_at",
                    "probability_display",
                    "probability_override",
                    "forecast_category_display",
                )
            },
        ),
        (
            capfirst(_("amount")),
            {"fields": ("amount", "currency", "budget", "close_date", "weighted_amount_display")},
        ),
        (capfirst(_("closed on")), {"fields": ("closed_on", "lost_reason", "lost_to")}),
        (
            capfirst(_("version")),
            {"fields": ("version", "created_at", "updated_at", "expected_version")},
        ),
    )
    readonly_fields = (
        "account",
        "owner",
        "branch",
        "playbook",
        "stage",
        "status",
        "stage_entered_at",
        "probability_display",
        "forecast_category_display",
        "weighted_amount_display",
        "closed_on",
        "lost_reason",
        "lost_to",
        "version",
        "created_at",
        "updated_at",
    )
    inlines = (
        HistoryInline,
        EvidenceInline,
        OverrideInline,
        ApprovalInline,
        TeamMemberInline,
        CompetitorInline,
        KeyDateInline,
        QuoteInline,
        ObjectionInline,
        ActivityInline,
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related(*self.list_select_related)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Opportunities open through opportunity_create's gate, from the web UI or the CLI.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A won or lost deal is reopened by its stage operation before anything else changes.
        if obj is not None and obj.status != Status.OPEN:
            return False
        return super().has_change_permission(request, obj)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if self.has_change_permission(request, obj):
            return fieldsets
        return [
            (title, {**opts, "fields": [f for f in opts["fields"] if f != "expected_version"]})
            for title, opts in fieldsets
        ]

    @admin.display(description=_("probability (%)"))
    def probability_display(self, obj: Opportunity) -> int:
        return obj.probability

    @admin.display(description=_("forecast category"))
    def forecast_category_display(self, obj: Opportunity) -> str:
        return str(ForecastCategory(obj.forecast_category).label)

    @admin.display(description=_("weighted amount"))
    def weighted_amount_display(self, obj: Opportunity) -> Any:
        return obj.weighted_amount

    def save_through_service(
        self, request: HttpRequest, obj: Any, form: Any, change: bool
    ) -> models.Model | None:
        changes = changed_values(form, UPDATABLE)
        if not changes:
            return obj
        return opportunity_update(
            opportunity=obj.pk,
            actor=request.user,
            expected_version=form.cleaned_data["expected_version"],
            **changes,
        )


# --- append-only records --------------------------------------------------------------------


@admin.register(OpportunityHistory)
class OpportunityHistoryAdmin(ReadOnlyAdmin):
    list_display = (
        "valid_from",
        "opportunity",
        "action",
        "stage",
        "status",
        "amount",
        "currency",
        "close_date",
        "probability",
        "owner",
        "actor",
    )
    list_filter = ("action", "status", "forecast_category", "stage__playbook")
    search_fields = ("opportunity__name", "reason", "actor__username", "owner__username")
    list_select_related = ("opportunity", "stage", "owner", "actor")
    date_hierarchy = "valid_from"
    ordering = ("-valid_from", "-id")


@admin.register(CriterionEvidence)
class CriterionEvidenceAdmin(ReadOnlyAdmin):
    list_display = ("recorded_at", "opportunity", "criterion", "satisfied", "note", "actor")
    list_filter = ("satisfied", "criterion__stage__playbook")
    search_fields = ("opportunity__name", "note", "criterion__key", "actor__username")
    list_select_related = ("opportunity", "criterion", "actor")
    date_hierarchy = "recorded_at"
    ordering = ("-recorded_at", "-id")


@admin.register(GateOverride)
class GateOverrideAdmin(ReadOnlyAdmin):
    list_display = ("at", "opportunity", "stage", "actor", "reason")
    list_filter = ("stage__playbook", "stage")
    search_fields = ("opportunity__name", "reason", "actor__username")
    list_select_related = ("opportunity", "stage", "actor")
    date_hierarchy = "at"
    ordering = ("-at", "-id")
    fields = ("opportunity", "stage", "at", "actor", "reason", "missing_display")
    readonly_fields = fields

    @admin.display(description=_("missing criteria"))
    def missing_display(self, obj: GateOverride) -> str:
        return pretty_json(obj.missing)


# --- the project work, read-only here --------------------------------------------------------


@admin.register(ProjectApproval)
class ProjectApprovalAdmin(ReadOnlyAdmin):
    """立项 requests: decided by a manager of the seller's branch through `approval_decide`."""

    list_display = (
        "requested_at",
        "opportunity",
        "requested_by",
        "status",
        "budget",
        "decided_by",
        "decided_at",
    )
    list_filter = ("status",)
    search_fields = ("opportunity__name", "requested_by__username", "requirement", "comment")
    list_select_related = ("opportunity", "requested_by", "decided_by")
    date_hierarchy = "requested_at"
    ordering = ("-requested_at", "-id")
    actions = ("approve_selected", "reject_selected")

    @admin.action(description=_("Approve selected 立项 requests"))
    def approve_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._decide(request, queryset, approve=True, comment=gettext("Approved in the admin"))

    @admin.action(description=_("Reject selected 立项 requests"))
    def reject_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._decide(request, queryset, approve=False, comment=gettext("Rejected in the admin"))

    def _decide(
        self, request: HttpRequest, queryset: QuerySet, *, approve: bool, comment: str
    ) -> None:
        done = 0
        for approval in queryset.select_related("opportunity").order_by("pk"):
            try:
                approval_decide(
                    approval=approval.pk, actor=request.user, approve=approve, comment=comment
                )
            except LoudouError as exc:
                self.message_user(request, f"{approval}: {exc.message}", messages.ERROR)
            else:
                done += 1
        if done:
            text = (
                ngettext("%(n)d request approved.", "%(n)d requests approved.", done)
                if approve
                else ngettext("%(n)d request rejected.", "%(n)d requests rejected.", done)
            )
            self.message_user(request, text % {"n": done}, messages.SUCCESS)


@admin.register(TeamMember)
class TeamMemberAdmin(ReadOnlyAdmin):
    list_display = ("opportunity", "user", "role", "added_at")
    list_filter = ("role",)
    search_fields = ("opportunity__name", "user__username", "user__display_name")
    list_select_related = ("opportunity", "user", "role")
    ordering = ("opportunity__name", "role__order", "id")


@admin.register(OpportunityCompetitor)
class OpportunityCompetitorAdmin(ReadOnlyAdmin):
    list_display = ("opportunity", "competitor", "active", "notes")
    list_filter = ("active", "competitor__kind")
    search_fields = ("opportunity__name", "competitor__name", "notes")
    list_select_related = ("opportunity", "competitor")
    ordering = ("opportunity__name", "competitor__name", "id")


@admin.register(KeyDate)
class KeyDateAdmin(ReadOnlyAdmin):
    list_display = ("opportunity", "kind", "label", "planned", "actual")
    list_filter = ("kind",)
    search_fields = ("opportunity__name", "label")
    list_select_related = ("opportunity",)
    date_hierarchy = "planned"
    ordering = ("planned", "id")


@admin.register(Objection)
class ObjectionAdmin(ReadOnlyAdmin):
    list_display = ("raised_at", "opportunity", "text", "status", "raised_by", "answered_by")
    list_filter = ("status",)
    search_fields = ("opportunity__name", "text", "answer")
    list_select_related = ("opportunity", "raised_by", "answered_by")
    date_hierarchy = "raised_at"
    ordering = ("-raised_at", "-id")


class QuoteLineInline(ReadOnlyInline):
    model = QuoteLine
    fields = ("category", "description", "quantity", "unit_price", "discount_percent", "net")
    readonly_fields = fields
    ordering = ("category", "id")
    show_change_link = False

    @admin.display(description=_("net amount"))
    def net(self, obj: QuoteLine) -> Any:
        return obj.net_amount


@admin.register(Quote)
class QuoteAdmin(ReadOnlyAdmin):
    list_display = (
        "opportunity",
        "kind",
        "version",
        "currency",
        "total",
        "created_by",
        "created_at",
        "submitted_at",
    )
    list_filter = ("kind",)
    search_fields = ("opportunity__name", "notes")
    list_select_related = ("opportunity", "created_by")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    inlines = (QuoteLineInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("lines")

    @admin.display(description=_("total"))
    def total(self, obj: Quote) -> Any:
        return obj.totals()["total"]


@admin.register(QuoteLine)
class QuoteLineAdmin(ReadOnlyAdmin):
    list_display = (
        "quote",
        "category",
        "description",
        "quantity",
        "unit_price",
        "discount_percent",
    )
    list_filter = ("category",)
    search_fields = ("description", "quote__opportunity__name")
    list_select_related = ("quote",)
    ordering = ("quote", "category", "id")


@admin.register(Activity)
class ActivityAdmin(ReadOnlyAdmin):
    list_display = ("due_on", "kind", "subject", "opportunity", "owner", "done_at")
    list_filter = ("kind",)
    search_fields = ("subject", "notes", "outcome", "opportunity__name")
    list_select_related = ("opportunity", "owner")
    date_hierarchy = "due_on"
    ordering = ("due_on", "id")
