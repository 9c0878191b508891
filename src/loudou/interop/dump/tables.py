"""What a dump holds: the tables (every model of the loudou apps, in load order), their columns
and how a column that points to a content type or a permission is written (by natural key), the
manifest's constants and the migrations applied. Shared by the writing (`write`) and the
restoring (`restore`) of a dump."""

from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models
from django.db.migrations.recorder import MigrationRecorder
from django.utils.translation import gettext as _

from loudou.core.errors import LoudouError

FORMAT = "loudou-dump"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
README = "README.md"
CHUNK = 2000  # rows fetched per database round trip while dumping
BATCH = 1000  # rows per INSERT while loading
NATURAL_KEYS = {ContentType: "contenttypes.contenttype", Permission: "auth.permission"}


class DumpRefused(LoudouError):
    """A dump that cannot be written or loaded as asked; nothing was changed."""

    code = "dump_refused"


@dataclass(frozen=True)
class Column:
    """One concrete field of a table: its JSON key (the attname, or the field's name when the
    value is a natural key) and how its values are written and read."""

    key: str
    field: models.Field
    natural: str  # "" or the label of the model the natural key names

    @property
    def value_field(self) -> models.Field:
        """The field whose type the stored value has (a foreign key's target field)."""
        return self.field.target_field if self.field.is_relation else self.field  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Table:
    """One model as a file of the dump."""

    model: type[models.Model]
    columns: tuple[Column, ...]

    @property
    def label(self) -> str:
        return self.model._meta.label_lower

    @property
    def file(self) -> str:
        return f"{self.label}.jsonl"


def _table(model: type[models.Model]) -> Table:
    columns = []
    for field in model._meta.concrete_fields:
        related = field.related_model if field.is_relation else None
        if related in NATURAL_KEYS:
            columns.append(Column(field.name, field, NATURAL_KEYS[related]))  # type: ignore[index]
        else:
            columns.append(Column(field.attname, field, ""))
    return Table(model, tuple(columns))


def dumped_models() -> list[type[models.Model]]:
    """Every table of the loudou apps (many-to-many link tables included), the user groups the
    admin can make with their permissions, and the admin's change log, in enumeration order."""
    chosen: list[type[models.Model]] = []
    for config in apps.get_app_configs():
        if config.name.startswith("loudou."):
            chosen += config.get_models(include_auto_created=True)
    chosen += [Group, Group.permissions.through]
    if apps.is_installed("django.contrib.admin"):
        chosen.append(apps.get_model("admin", "LogEntry"))
    return [m for m in chosen if m._meta.managed and not m._meta.proxy]


def load_order(models_: list[type[models.Model]]) -> list[type[models.Model]]:
    """The models with each after the models its foreign keys point to (stable otherwise).
    Self-references and cycles need no order: foreign keys are checked at the end of the load's
    transaction (Django creates them DEFERRABLE INITIALLY DEFERRED on SQLite and PostgreSQL)."""
    needs = {
        m: {
            f.related_model
            for f in m._meta.concrete_fields
            if f.is_relation and f.related_model in models_ and f.related_model is not m
        }
        for m in models_
    }
    ordered: list[type[models.Model]] = []
    while len(ordered) < len(models_):
        waiting = [m for m in models_ if m not in ordered]
        ready = [m for m in waiting if needs[m] <= set(ordered)]
        ordered.append(ready[0] if ready else waiting[0])  # a cycle: any order will do
    return ordered


def dump_tables() -> list[Table]:
    """The tables of a dump, in load order."""
    return [_table(m) for m in load_order(dumped_models())]


class NaturalKeys:
    """Content types and permissions by id (to write a dump) and by natural key (to load one)."""

    def __init__(self) -> None:
        self.by_id: dict[str, dict[int, list[str]]] = {
            "contenttypes.contenttype": {
                pk: [app, model]
                for pk, app, model in ContentType.objects.values_list("id", "app_label", "model")
            },
            "auth.permission": {
                pk: [codename, app, model]
                for pk, codename, app, model in Permission.objects.values_list(
                    "id", "codename", "content_type__app_label", "content_type__model"
                )
            },
        }
        self.by_key = {
            label: {tuple(key): pk for pk, key in ids.items()} for label, ids in self.by_id.items()
        }

    def id_for(self, label: str, key: Any) -> int:
        """The id of the content type or permission named by `key` here; a content type a dump
        names that this database lacks (a model since removed) is made, as migrate would."""
        found = self.by_key[label].get(tuple(key))
        if found is not None:
            return found
        if label == "contenttypes.contenttype" and len(key) == 2:
            made = ContentType.objects.get_or_create(app_label=key[0], model=key[1])[0]
            self.by_key[label][tuple(key)] = made.pk
            return made.pk
        raise DumpRefused(
            _("The dump names %(what)s %(key)s, which this database does not have.")
            % {"what": label, "key": "/".join(map(str, key))}
        )


def applied_migrations() -> dict[str, list[str]]:
    """The migrations applied to the database, per app of the loudou project."""
    applied: dict[str, list[str]] = {}
    for app, name in MigrationRecorder(connection).applied_migrations():
        if apps.is_installed(f"loudou.{app}"):
            applied.setdefault(app, []).append(name)
    return {app: sorted(names) for app, names in sorted(applied.items())}
