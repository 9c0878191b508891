"""Reading the audit log: who may read which events, and the filters its pages and API share.
Each event put into words (labels, subjects, changed fields) is in `core.audit_words`.

The log is written by `loudou.core.audit.audit`; each event names the object a service recorded
it on (its content type and id). Most work on a deal is recorded on the opportunity itself
(stage moves, overrides, evidence, team, key dates, competitors added); 立项 requests and
decisions, quotes, activities, objections and competitor updates are recorded on their own rows,
which hang off an opportunity; contacts hang off an account."""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from loudou.core.audit import ACTIONS
from loudou.core.errors import NotFound, PermissionDenied
from loudou.core.models import AuditEvent
from loudou.customers.models import Account, Contact
from loudou.org.access import managed_branch_ids
from loudou.org.models import AccessLevel, Branch, Target, User
from loudou.pipeline.models import (
    Activity,
    Objection,
    Opportunity,
    OpportunityCompetitor,
    ProjectApproval,
    Quote,
)
from loudou.playbooks.models import Playbook

# The action filter's groups, in the order a manager looks for them.
ACTION_GROUPS: list[tuple[Promise, list[str]]] = [
    (gettext_lazy("Opportunities"), [
        "opportunity.create", "opportunity.import", "opportunity.update", "opportunity.reassign",
        "opportunity.advance", "opportunity.regress", "opportunity.win", "opportunity.lose",
        "opportunity.reopen", "gate.override", "evidence.record",
    ]),
    (gettext_lazy("Project set-up (立项)"), [
        "approval.request", "approval.approve", "approval.reject", "approval.withdraw",
    ]),
    (gettext_lazy("Project work"), [
        "team.add", "team.remove", "competitor.add", "competitor.update", "keydate.set",
        "objection.raise", "objection.answer", "quote.create", "quote.submit", "activity.plan",
        "activity.complete",
    ]),
    (gettext_lazy("Accounts"), [
        "account.create", "account.update", "account.qualify", "contact.create", "contact.update",
    ]),
    (gettext_lazy("Organisation"), [
        "branch.create", "branch.update", "user.create", "user.update", "user.role_change",
        "user.preferences", "user.password_change", "target.set",
    ]),
    (gettext_lazy("Configuration"), [
        "playbook.load", "playbook.probabilities_accept", "catalog.save", "catalog.delete",
        "token.create", "token.revoke",
    ]),
]  # fmt: skip

# Rows recorded on their own that belong to one opportunity (their `opportunity` field).
OPPORTUNITY_PARTS: tuple[type[models.Model], ...] = (
    ProjectApproval,
    Quote,
    Activity,
    Objection,
    OpportunityCompetitor,
)


def _api_token_model() -> type[models.Model]:
    from loudou.api.models import ApiToken

    return ApiToken


# The object types the filter offers: key → (label, model). "catalogue" covers every editable
# catalogue (lost reasons, industries …): it is told by its actions, not by one model.
OBJECT_TYPES: dict[str, tuple[Promise, Any]] = {
    "opportunity": (gettext_lazy("Opportunity"), Opportunity),
    "approval": (gettext_lazy("Project set-up request"), ProjectApproval),
    "quote": (gettext_lazy("Quote"), Quote),
    "activity": (gettext_lazy("Activity"), Activity),
    "objection": (gettext_lazy("Objection"), Objection),
    "competitor": (gettext_lazy("Competitor in a deal"), OpportunityCompetitor),
    "account": (gettext_lazy("Account"), Account),
    "contact": (gettext_lazy("Contact"), Contact),
    "user": (gettext_lazy("User"), User),
    "branch": (gettext_lazy("Branch"), Branch),
    "target": (gettext_lazy("Target"), Target),
    "playbook": (gettext_lazy("Playbook"), Playbook),
    "token": (gettext_lazy("API token"), _api_token_model),
    "catalogue": (gettext_lazy("Catalogue entry"), None),
}
# The objects that have their own audit page (/audit/<kind>/<id>/).
SUBJECT_KINDS = ("opportunity", "account")

# --- who reads what --------------------------------------------------------------------------


def can_read_audit(user: Any) -> bool:
    """Managers, executives and administrators read the audit log; sellers do not."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return bool(user.level != AccessLevel.SELLER)


def require_audit_reader(user: Any) -> None:
    """PermissionDenied unless `user` may read the audit log (the same answer as /import/)."""
    if not can_read_audit(user):
        raise PermissionDenied(
            _("Only managers, executives and administrators may read the audit log.")
        )


def _content_type(model: type[models.Model]) -> ContentType:
    # ContentType's manager caches: one query per model per process, none per request after.
    return ContentType.objects.get_for_model(model)


def _ids_as_text(qs: QuerySet[Any]) -> QuerySet[Any]:
    """The primary keys of `qs` as text, to compare with AuditEvent.object_id (a CharField)."""
    return qs.annotate(pk_text=Cast("pk", CharField(max_length=64))).values("pk_text")


def _about(model: type[models.Model], qs: QuerySet[Any]) -> Q:
    """Events recorded on a row of `qs` (of `model`)."""
    return Q(content_type=_content_type(model), object_id__in=_ids_as_text(qs))


def _parts_of(opportunities: QuerySet[Any]) -> Q:
    """Events on the rows that hang off these opportunities (立项 requests, quotes …)."""
    rule = Q(pk__in=[])
    for model in OPPORTUNITY_PARTS:
        rule |= _about(model, model._default_manager.filter(opportunity__in=opportunities))
    return rule


def audit_events_visible_to(user: Any) -> QuerySet[AuditEvent]:
    """The audit events `user` may read, newest first.

    - Executives and administrators read every event.
    - A manager reads the events about what they may see (the visibility rule): the
      opportunities of their branches (and those they own or are on the team of) with what
      hangs off them — evidence, overrides, team, key dates and competitors are recorded on the
      opportunity itself; 立项 requests, quotes, activities, objections and competitor updates on
      their own rows; the accounts they may see and those accounts' contacts; the users, targets
      and branches of the branches they manage. Never an event about an object outside that:
      another branch's deals and people, the company's target, playbooks, catalogues and API
      tokens are for executives and administrators.
    - Sellers (and anonymous or inactive users) read nothing: the log is a managers' tool.
    """
    events = AuditEvent.objects.all()
    if not can_read_audit(user):
        return events.none()
    managed = managed_branch_ids(user)
    if managed is None:
        return events
    opportunities = Opportunity.objects.visible_to(user)
    accounts = Account.objects.visible_to(user)
    rule = _about(Opportunity, opportunities) | _parts_of(opportunities)
    rule |= _about(Account, accounts)
    rule |= _about(Contact, Contact.objects.filter(account__in=accounts))
    if managed:
        rule |= _about(User, User.objects.filter(branch__in=managed))
        rule |= _about(Branch, Branch.objects.filter(pk__in=managed))
        rule |= _about(
            Target, Target.objects.filter(Q(user__branch__in=managed) | Q(branch__in=managed))
        )
    return events.filter(rule)


def audit_subject_get(user: Any, kind: str, pk: int) -> Any:
    """The opportunity or account whose audit page `user` asks for: PermissionDenied for
    sellers (before anything is looked up), NotFound when it does not exist or is hidden."""
    require_audit_reader(user)
    model = {"opportunity": Opportunity, "account": Account}.get(kind)
    if model is None:
        raise NotFound(_("No such page."))
    found = model.objects.visible_to(user).filter(pk=pk).first()  # type: ignore[attr-defined]
    if found is None:
        raise NotFound(
            _("No such opportunity.") if kind == "opportunity" else _("No such account.")
        )
    return found


def audit_events_about(user: Any, subject: Any) -> QuerySet[AuditEvent]:
    """The events `user` may read about one opportunity (and the rows that hang off it) or one
    account (and its contacts)."""
    if isinstance(subject, Opportunity):
        scope = Q(content_type=_content_type(Opportunity), object_id=str(subject.pk))
        scope |= _parts_of(Opportunity.objects.filter(pk=subject.pk))
    else:
        scope = Q(content_type=_content_type(Account), object_id=str(subject.pk))
        scope |= _about(Contact, Contact.objects.filter(account_id=subject.pk))
    return audit_events_visible_to(user).filter(scope)


def audit_actors(events: QuerySet[AuditEvent]) -> list[User]:
    """The people who did something among `events`, by name (the actor filter's choices)."""
    ids = events.order_by().values("actor_id").distinct()
    return sorted(User.objects.filter(pk__in=ids), key=lambda u: str(u).lower())


# --- filters ---------------------------------------------------------------------------------


@dataclass
class AuditFilters:
    """What the audit pages and the API filter on; empty values filter nothing."""

    action: str = ""
    actor_id: int | None = None
    object_type: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    search: str = ""

    def clean(self) -> "AuditFilters":
        """The same filters with unknown actions and object types dropped (a stale link)."""
        return AuditFilters(
            action=self.action if self.action in ACTIONS else "",
            actor_id=self.actor_id,
            object_type=self.object_type if self.object_type in OBJECT_TYPES else "",
            date_from=self.date_from,
            date_to=self.date_to,
            search=self.search.strip()[:200],
        )

    @property
    def active(self) -> bool:
        return any(
            (self.action, self.actor_id, self.object_type, self.date_from, self.date_to,
             self.search)
        )  # fmt: skip

    def apply(self, events: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        """`events` narrowed by these filters (dates are whole days in the reader's zone)."""
        if self.action:
            events = events.filter(action=self.action)
        if self.actor_id:
            events = events.filter(actor_id=self.actor_id)
        if self.object_type:
            events = events.filter(object_type_rule(self.object_type))
        if self.date_from:
            events = events.filter(at__gte=_start_of(self.date_from))
        if self.date_to:
            events = events.filter(at__lt=_start_of(self.date_to + dt.timedelta(days=1)))
        if self.search:
            events = events.filter(_search_rule(self.search))
        return events


def _start_of(day: dt.date) -> dt.datetime:
    """Midnight of `day` in the active time zone (the reader's)."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def object_type_rule(key: str) -> Q:
    """Events about objects of one type of OBJECT_TYPES."""
    if key == "catalogue":
        return Q(action__startswith="catalog.")
    model = OBJECT_TYPES[key][1]
    if not isinstance(model, type):
        model = model()
    return Q(content_type=_content_type(model)) & ~Q(action__startswith="catalog.")


def _search_rule(text: str) -> Q:
    """The object's name as recorded, or the current name of the deal or account it hangs off
    (so that a deal's name finds its quotes and 立项 requests too)."""
    rule = Q(object_repr__icontains=text)
    deals = Opportunity.objects.filter(name__icontains=text)
    for model in OPPORTUNITY_PARTS:
        rule |= _about(model, model._default_manager.filter(opportunity__in=deals))
    rule |= _about(Contact, Contact.objects.filter(account__name__icontains=text))
    return rule
