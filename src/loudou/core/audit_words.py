"""The audit log in words: each event's action as a label, the deal or account it concerns,
the fields it changed from what to what (for the audit pages, their exports and the API).
Who may read which events, and the filters, are in `core.selectors`."""

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from loudou.core.i18n import is_chinese, join_list, localized
from loudou.core.models import AuditEvent
from loudou.core.selectors import OBJECT_TYPES, OPPORTUNITY_PARTS
from loudou.customers.models import Account, Contact
from loudou.org.models import Branch, User
from loudou.pipeline.models import (
    Competitor,
    KeyDate,
    Opportunity,
)
from loudou.playbooks.models import Criterion, Role, Stage

# Every action in words, as the audit pages and the API's `action_label` show it.
ACTION_LABELS: dict[str, Promise] = {
    "opportunity.create": gettext_lazy("Opportunity created"),
    "opportunity.import": gettext_lazy("Opportunity imported"),
    "opportunity.update": gettext_lazy("Opportunity edited"),
    "opportunity.reassign": gettext_lazy("Owner changed"),
    "opportunity.advance": gettext_lazy("Advanced"),
    "opportunity.regress": gettext_lazy("Moved back"),
    "opportunity.win": gettext_lazy("Won"),
    "opportunity.lose": gettext_lazy("Lost"),
    "opportunity.reopen": gettext_lazy("Reopened"),
    "gate.override": gettext_lazy("Gate overridden"),
    "evidence.record": gettext_lazy("Evidence recorded"),
    "approval.request": gettext_lazy("Project set-up requested"),
    "approval.approve": gettext_lazy("Project set-up approved"),
    "approval.reject": gettext_lazy("Project set-up rejected"),
    "approval.withdraw": gettext_lazy("Project set-up request withdrawn"),
    "team.add": gettext_lazy("Added to the project team"),
    "team.remove": gettext_lazy("Removed from the project team"),
    "competitor.add": gettext_lazy("Competitor added"),
    "competitor.update": gettext_lazy("Competitor updated"),
    "keydate.set": gettext_lazy("Key date set"),
    "objection.raise": gettext_lazy("Objection raised"),
    "objection.answer": gettext_lazy("Objection answered"),
    "quote.create": gettext_lazy("Quote made"),
    "quote.submit": gettext_lazy("Quote submitted"),
    "activity.plan": gettext_lazy("Activity planned"),
    "activity.complete": gettext_lazy("Activity done"),
    "account.create": gettext_lazy("Account created"),
    "account.update": gettext_lazy("Account edited"),
    "account.qualify": gettext_lazy("Target account status set"),
    "contact.create": gettext_lazy("Contact added"),
    "contact.update": gettext_lazy("Contact edited"),
    "branch.create": gettext_lazy("Branch created"),
    "branch.update": gettext_lazy("Branch edited"),
    "user.create": gettext_lazy("User created"),
    "user.update": gettext_lazy("User profile edited"),
    "user.role_change": gettext_lazy("Role or branch changed"),
    "user.preferences": gettext_lazy("Preferences changed"),
    "user.password_change": gettext_lazy("Password changed"),
    "target.set": gettext_lazy("Target set"),
    "playbook.load": gettext_lazy("Playbook loaded"),
    "playbook.probabilities_accept": gettext_lazy("Stage probabilities accepted from history"),
    "catalog.save": gettext_lazy("Catalogue entry saved"),
    "catalog.delete": gettext_lazy("Catalogue entry deleted"),
    "token.create": gettext_lazy("API token created"),
    "token.revoke": gettext_lazy("API token revoked"),
}


# Labels of the values services record that are not fields of the audited model.
EXTRA_FIELD_LABELS: dict[str, Promise] = {
    "missing": gettext_lazy("missing criteria"),
    "criterion": gettext_lazy("criterion"),
    "satisfied": gettext_lazy("holds"),
    "user": gettext_lazy("person"),
    "role": gettext_lazy("role"),
    "competitor": gettext_lazy("competitor"),
    "kind": gettext_lazy("kind"),
    "total": gettext_lazy("total"),
    "submitted": gettext_lazy("submitted"),
    "submitted_at": gettext_lazy("submitted at"),
    "done_at": gettext_lazy("done at"),
    "outcome": gettext_lazy("outcome"),
    "is_target": gettext_lazy("target account"),
    "overridden": gettext_lazy("set by a manager"),
    "digest": gettext_lazy("digest"),
    "prefix": gettext_lazy("prefix"),
    "revoked_at": gettext_lazy("revoked at"),
    "stage": gettext_lazy("stage"),
    "version": gettext_lazy("version"),
    "key": gettext_lazy("key"),
    "name": gettext_lazy("name"),
    "text": gettext_lazy("text"),
}
# Values recorded by reference outside the model's own fields: key → (model, lookup field).
EXTRA_REFERENCES: dict[str, tuple[type[models.Model], str]] = {
    "user": (User, "pk"),
    "role": (Role, "key"),
}
# Actions recorded on the opportunity whose values are those of another row.
VALUE_MODELS: dict[str, type[models.Model]] = {"keydate.set": KeyDate, "competitor.add": Competitor}
# Not shown in the compact diff: the version moves with every write and says nothing.
HIDDEN_FIELDS = frozenset({"version"})
LONG_VALUE = 120


# --- events in words -------------------------------------------------------------------------


@dataclass
class Change:
    """One field an event recorded: its label and its value before and after, in words."""

    field: str
    label: str
    before: str
    after: str
    created: bool = False


@dataclass
class AuditRow:
    """One event as the pages and the API show it."""

    event: AuditEvent
    action_label: str
    object_type: str
    object_type_label: str
    # The opportunity or account the event concerns (itself, or the one its row hangs off),
    # when it still exists: (kind, id, name).
    subject: tuple[str, int, str] | None
    changes: list[Change] = field(default_factory=list)

    @property
    def shown_changes(self) -> list[Change]:
        return self.changes[:4]

    @property
    def more_changes(self) -> list[Change]:
        return self.changes[4:]


def action_label(action: str) -> str:
    return str(ACTION_LABELS.get(action, action))


def _model_of(event: AuditEvent) -> type[models.Model] | None:
    return event.content_type.model_class()


def _values_model(event: AuditEvent) -> type[models.Model] | None:
    """The model whose fields an event's values are: its object's, except for the rows a
    service records on their opportunity (a key date, a competitor)."""
    return VALUE_MODELS.get(event.action) or _model_of(event)


def _type_key(event: AuditEvent, model: Any) -> str:
    if event.action.startswith("catalog."):
        return "catalogue"
    for key, (_label, candidate) in OBJECT_TYPES.items():
        if candidate is not None and not isinstance(candidate, type):
            candidate = candidate()
        if candidate is model:
            return key
    return event.content_type.model


def _model_field(model: Any, name: str) -> Any:
    if model is None:
        return None
    try:
        return model._meta.get_field(name)
    except Exception:  # FieldDoesNotExist: a value the service recorded beside the fields
        return None


def _field_label(model: Any, name: str) -> str:
    found = _model_field(model, name)
    if found is not None and hasattr(found, "verbose_name"):
        return str(found.verbose_name)
    return str(EXTRA_FIELD_LABELS.get(name, name.replace("_", " ")))


def _pairs(event: AuditEvent) -> list[tuple[str, Any, Any, bool]]:
    """(field, before, after, created) of each value the event changed; an event without a
    `before` (a creation) lists what it recorded, leaving out empty values."""
    before, after = event.before or {}, event.after or {}
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    keys = list(after) + [k for k in before if k not in after]
    out = []
    for key in keys:
        if key in HIDDEN_FIELDS:
            continue
        old, new = before.get(key), after.get(key)
        if event.before is None:
            if new in (None, "", [], {}):
                continue
            out.append((key, None, new, True))
        elif old != new:
            out.append((key, old, new, False))
    return out


class _Names:
    """Names for the ids an event page's values refer to, loaded in one query per model."""

    def __init__(self) -> None:
        self.wanted: dict[tuple[type[models.Model], str], set[Any]] = defaultdict(set)
        self.found: dict[tuple[type[models.Model], str], dict[Any, Any]] = {}

    def want(self, model: type[models.Model], lookup: str, value: Any) -> None:
        if value is not None and value != "":
            self.wanted[(model, lookup)].add(value)

    def load(self) -> None:
        for (model, lookup), values in self.wanted.items():
            if lookup == "pk":
                values = {v for v in values if isinstance(v, int) or str(v).isdigit()}
            rows = model._default_manager.filter(**{f"{lookup}__in": values})
            self.found[(model, lookup)] = {
                getattr(row, "pk" if lookup == "pk" else lookup): row for row in rows
            }

    def name(self, model: type[models.Model], lookup: str, value: Any) -> str:
        key = int(value) if lookup == "pk" and str(value).isdigit() else value
        row = self.found.get((model, lookup), {}).get(key)
        if row is None:
            return f"#{value}" if lookup == "pk" else str(value)
        return _display_name(row)


def _display_name(row: Any) -> str:
    if hasattr(row, "name_zh"):
        return localized(row, "name")
    if isinstance(row, Branch):
        return row.name_en if row.name_en and not is_chinese() else row.name
    return str(row)


def _reference(model: Any, name: str) -> tuple[type[models.Model], str] | None:
    """The (model, lookup) a recorded value of `name` refers to, if it is a reference."""
    found = _model_field(model, name)
    if found is not None:
        if getattr(found, "many_to_one", False) and found.related_model is not None:
            return found.related_model, "pk"
        return None
    return EXTRA_REFERENCES.get(name)


def _criterion_keys(key: str, value: Any) -> list[tuple[str, str]]:
    """(stage key, criterion key) pairs a recorded value names."""
    if key == "missing" and isinstance(value, list):
        return [(d.get("stage", ""), d.get("key", "")) for d in value if isinstance(d, dict)]
    if key == "criterion" and isinstance(value, str) and "." in value:
        stage, _dot, criterion = value.partition(".")
        return [(stage, criterion)]
    return []


class _Criteria:
    """The criterion texts and stage names that gate overrides and evidence record by key, in
    one query each for a page."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.stage_keys: set[str] = set()
        self.texts: dict[tuple[int, str, str], Criterion] = {}
        self.any_playbook: dict[tuple[str, str], Criterion] = {}
        self.stages: dict[tuple[int, str], Stage] = {}
        self.any_stage: dict[str, Stage] = {}

    def load(self) -> None:
        if self.keys:
            for c in Criterion.objects.filter(key__in=self.keys).select_related("stage"):
                self.texts[(c.stage.playbook_id, c.stage.key, c.key)] = c
                self.any_playbook.setdefault((c.stage.key, c.key), c)
        if self.stage_keys:
            for stage in Stage.objects.filter(key__in=self.stage_keys).order_by("pk"):
                self.stages[(stage.playbook_id, stage.key)] = stage
                self.any_stage.setdefault(stage.key, stage)

    def text(self, playbook_id: int | None, stage: str, key: str) -> str:
        found = self.texts.get((playbook_id or 0, stage, key)) or self.any_playbook.get(
            (stage, key)
        )
        return localized(found, "text") if found else f"{stage}.{key}"

    def stage_name(self, playbook_id: int | None, key: str) -> str:
        found = self.stages.get((playbook_id or 0, key)) or self.any_stage.get(key)
        return localized(found, "name") if found else key


def _is_stage_key(key: str, value: Any) -> bool:
    """A stage recorded by its key (a gate override), not by its id (a stage move)."""
    return key == "stage" and isinstance(value, str) and not value.isdigit()


def _words(value: Any) -> str:
    """A recorded value in words (ids and criteria are named elsewhere)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, list):
        return join_list([_words(v) for v in value])
    if isinstance(value, dict):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    else:
        text = str(value)
    return text if len(text) <= LONG_VALUE else text[: LONG_VALUE - 1] + "…"


class _Subjects:
    """The deal or account each event of a page concerns (the object itself, or the one its
    row hangs off), when it still exists: one query per kind of row, then one for the deals
    and one for the accounts."""

    def __init__(self, events: list[AuditEvent]) -> None:
        ids: dict[Any, set[int]] = defaultdict(set)
        for e in events:
            if e.object_id.isdigit():
                ids[_model_of(e)].add(int(e.object_id))
        # (model, id) of an audited row → ("opportunity" or "account", id)
        self.parent: dict[tuple[Any, int], tuple[str, int]] = {}
        for model, kind, link in [
            (m, "opportunity", "opportunity_id") for m in OPPORTUNITY_PARTS
        ] + [(Contact, "account", "account_id")]:
            if ids.get(model):
                rows = model._default_manager.filter(pk__in=ids[model]).values_list("pk", link)
                self.parent.update({(model, pk): (kind, up) for pk, up in rows})
        self.parent.update({(Opportunity, pk): ("opportunity", pk) for pk in ids[Opportunity]})
        self.parent.update({(Account, pk): ("account", pk) for pk in ids[Account]})
        wanted: dict[str, set[int]] = defaultdict(set)
        for kind, pk in self.parent.values():
            wanted[kind].add(pk)
        # kind → id → (name, playbook id)
        self.found: dict[str, dict[int, tuple[str, int | None]]] = {
            "opportunity": {},
            "account": {},
        }
        if wanted["opportunity"]:
            deals = Opportunity.objects.filter(pk__in=wanted["opportunity"])
            for pk, name, playbook_id in deals.values_list("pk", "name", "playbook_id"):
                self.found["opportunity"][pk] = (name, playbook_id)
        if wanted["account"]:
            accounts = Account.objects.filter(pk__in=wanted["account"])
            for pk, name in accounts.values_list("pk", "name"):
                self.found["account"][pk] = (name, None)

    def of(self, event: AuditEvent) -> tuple[tuple[str, int, str] | None, int | None]:
        """(kind, id, name) of the deal or account, and the deal's playbook id."""
        if not event.object_id.isdigit():
            return None, None
        kind, pk = self.parent.get((_model_of(event), int(event.object_id)), ("", 0))
        found = self.found.get(kind, {}).get(pk)
        if found is None:
            return None, None
        return (kind, pk, found[0]), found[1]


class _Words:
    """Recorded values in words: the people, stages, branches … they refer to and the criteria
    they name, loaded for a whole page in one query per kind."""

    def __init__(self, events: list[AuditEvent]) -> None:
        self.names, self.criteria = _Names(), _Criteria()
        self.pairs = {e.pk: _pairs(e) for e in events}
        # Labels and choices are the same for every event of a kind: worked out once a page.
        self.labels: dict[tuple[Any, str], str] = {}
        self.choices: dict[tuple[Any, str], dict[Any, str]] = {}
        for e in events:
            model = _values_model(e)
            for key, old, new, _created in self.pairs[e.pk]:
                ref = _reference(model, key)
                for value in (old, new):
                    if _is_stage_key(key, value):
                        self.criteria.stage_keys.add(value)
                    elif ref:
                        self.names.want(ref[0], ref[1], value)
                    for _stage, criterion in _criterion_keys(key, value):
                        self.criteria.keys.add(criterion)
        self.names.load()
        self.criteria.load()

    def say(self, model: Any, playbook_id: int | None, key: str, value: Any) -> str:
        if value is None or value == "":
            return "—"
        if _is_stage_key(key, value):
            return self.criteria.stage_name(playbook_id, value)
        named = _criterion_keys(key, value)
        if named:
            return join_list([self.criteria.text(playbook_id, s, k) for s, k in named])
        ref = _reference(model, key)
        if ref:
            return self.names.name(ref[0], ref[1], value)
        choices = self.choices.get((model, key))
        if choices is None:
            found = _model_field(model, key)
            flat = found.flatchoices if found is not None and found.choices else []
            choices = self.choices[(model, key)] = {k: str(v) for k, v in flat}
        if isinstance(value, str | int) and value in choices:
            return choices[value]
        return _words(value)

    def label(self, model: Any, key: str) -> str:
        if (model, key) not in self.labels:
            self.labels[(model, key)] = _field_label(model, key)
        return self.labels[(model, key)]

    def changes(self, event: AuditEvent, playbook_id: int | None) -> list[Change]:
        model = _values_model(event)
        return [
            Change(
                key,
                self.label(model, key),
                self.say(model, playbook_id, key, old),
                self.say(model, playbook_id, key, new),
                created,
            )
            for key, old, new, created in self.pairs[event.pk]
        ]


def _with_actor_and_type(events: list[AuditEvent]) -> list[AuditEvent]:
    """Attach each event's actor (one query for those not loaded yet) and content type (from
    Django's cache): an export reads thousands of events without building them row by row."""
    missing = {
        e.actor_id
        for e in events
        if e.actor_id and not AuditEvent.actor.is_cached(e)  # type: ignore[attr-defined]
    }
    actors = User.objects.in_bulk(missing) if missing else {}
    for e in events:
        if e.actor_id in actors:
            e.actor = actors[e.actor_id]
        if not AuditEvent.content_type.is_cached(e):  # type: ignore[attr-defined]
            e.content_type = ContentType.objects.get_for_id(e.content_type_id)
    return events


def audit_rows(events: Iterable[AuditEvent]) -> list[AuditRow]:
    """`events` (loaded with their actor and content type) in words, with the deal or account
    each concerns and the names of the people, stages and criteria their values refer to — in
    a fixed number of queries, whatever the number of events."""
    events = _with_actor_and_type(list(events))
    subjects, words = _Subjects(events), _Words(events)
    # The same few actions and types recur on every page: put into words once.
    actions: dict[str, str] = {}
    types: dict[tuple[int, bool], tuple[str, str]] = {}
    out = []
    for e in events:
        subject, playbook_id = subjects.of(e)
        if e.action not in actions:
            actions[e.action] = action_label(e.action)
        type_of = (e.content_type_id, e.action.startswith("catalog."))
        if type_of not in types:
            key = _type_key(e, _model_of(e))
            types[type_of] = (key, str(OBJECT_TYPES[key][0]) if key in OBJECT_TYPES else key)
        type_key, type_label = types[type_of]
        out.append(
            AuditRow(
                event=e,
                action_label=actions[e.action],
                object_type=type_key,
                object_type_label=type_label,
                subject=subject,
                changes=words.changes(e, playbook_id),
            )
        )
    return out


def changes_text(row: AuditRow) -> str:
    """The changes of a row on one line, for exports: "stage: A → B; amount: 1 → 2"."""
    parts = []
    for c in row.changes:
        parts.append(f"{c.label}: {c.after}" if c.created else f"{c.label}: {c.before} → {c.after}")
    return "; ".join(parts)
