"""Writes to playbooks: loading a validated playbook file as a new version, and accepting stage
probabilities learned from history as a new version."""

from itertools import pairwise
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from loudou.core import clock
from loudou.core.audit import audit
from loudou.core.errors import PermissionDenied, ValidationFailed
from loudou.org.models import AccessLevel
from loudou.playbooks.loader import (
    PlaybookFileError,
    PlaybookSpec,
    Problem,
    read_playbook_file,
)
from loudou.playbooks.models import Criterion, Playbook, Role, Stage, StageKind

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
BUILTIN_FILES = ("project-funnel.yaml", "simple.yaml")


def playbook_load(*, spec: PlaybookSpec, actor: Any = None) -> tuple[Playbook, bool]:
    """Write a validated playbook as a new version; return (playbook, created).

    Loading the same content again changes nothing and returns the current version. Roles and
    industries named in the file are added or renamed. All in one transaction: a problem found
    here (an owner role that exists neither in the file nor in the database) writes nothing.
    """
    from loudou.customers.models import Industry

    with transaction.atomic():
        current = Playbook.objects.select_for_update().filter(key=spec.key, is_current=True).first()
        if current is not None and current.source_digest == spec.digest:
            return current, False

        for i, role in enumerate(spec.roles):
            Role.objects.update_or_create(
                key=role["key"],
                defaults={"name_zh": role["name_zh"], "name_en": role["name_en"], "order": i + 1},
            )
        for industry in spec.industries:
            Industry.objects.update_or_create(
                key=industry["key"],
                defaults={"name_zh": industry["name_zh"], "name_en": industry["name_en"]},
            )
        roles = {r.key: r for r in Role.objects.all()}
        problems = [
            Problem(
                spec.source, stage.owners_line, f"stages[{i}].owners", f"unknown role {owner!r}"
            )
            for i, stage in enumerate(spec.stages)
            for owner in stage.owners
            if owner not in roles
        ]
        if problems:
            raise PlaybookFileError(problems)

        version = 1
        if current is not None:
            version = current.version + 1
            Playbook.objects.filter(pk=current.pk).update(is_current=False)
        if spec.default:
            Playbook.objects.filter(is_default=True).update(is_default=False)
        playbook = Playbook.objects.create(
            key=spec.key,
            version=version,
            name_zh=spec.name_zh,
            name_en=spec.name_en,
            description_zh=spec.description_zh,
            description_en=spec.description_en,
            is_default=spec.default or (current is not None and current.is_default),
            is_current=True,
            is_builtin=Path(spec.source).parent == BUILTIN_DIR,
            source_digest=spec.digest,
            source_name=Path(spec.source).name,
            loaded_at=clock.now(),
        )
        for order, stage_spec in enumerate(spec.stages, start=1):
            stage = Stage.objects.create(
                playbook=playbook,
                key=stage_spec.key,
                order=order,
                kind=stage_spec.kind,
                name_zh=stage_spec.name_zh,
                name_en=stage_spec.name_en,
                definition_zh=stage_spec.definition_zh,
                definition_en=stage_spec.definition_en,
                probability=stage_spec.probability,
                forecast_category=stage_spec.forecast_category,
                max_days=stage_spec.max_days,
                main_work=stage_spec.main_work,
            )
            stage.owners.set([roles[k] for k in stage_spec.owners])
            Criterion.objects.bulk_create(
                Criterion(
                    stage=stage,
                    key=c.key,
                    order=i,
                    kind=c.kind,
                    condition=c.condition,
                    text_zh=c.text_zh,
                    text_en=c.text_en,
                    required=c.required,
                )
                for i, c in enumerate(stage_spec.criteria, start=1)
            )
        audit(
            "playbook.load",
            playbook,
            actor=actor,
            after={"key": spec.key, "version": version, "digest": spec.digest},
        )
    return playbook, True


def playbook_load_file(*, path: Path, actor: Any = None) -> tuple[Playbook, bool]:
    """Read, validate and load a playbook file."""
    return playbook_load(spec=read_playbook_file(path), actor=actor)


def playbooks_load_builtin(*, actor: Any = None) -> list[Playbook]:
    """Load (or keep) the built-in playbooks: the seed's project funnel and the simple one."""
    return [playbook_load_file(path=BUILTIN_DIR / name, actor=actor)[0] for name in BUILTIN_FILES]


def playbook_probabilities_accept(
    *, playbook: Playbook, actor: Any, probabilities: dict[str, int]
) -> Playbook:
    """Accept new default probabilities for open stages (those learned from history, say) as a
    new version of the playbook; return the current version afterwards.

    `playbook` may be any version: the change applies to the current version of its key, which
    is copied whole (stages, owners, criteria, main work …) as version + 1 with the new
    probabilities. Open deals keep the version they were created under, and so their stage's
    probability; new deals use the new one. Only an administrator (or the command line, actor
    None) may; the values follow the playbook file's rules (whole percents 0–100, never
    decreasing down the funnel). Nothing different from the current version: no new version.

    The new version keeps the current one's source digest, so loading the same playbook file
    again stays a no-op; loading a changed file later makes a new version from the file (with
    the file's probabilities).
    """
    if actor is not None and getattr(actor, "level", None) != AccessLevel.ADMIN:
        raise PermissionDenied(
            _("Only an administrator may accept stage probabilities into the playbook.")
        )
    with transaction.atomic():
        current = _lock_current(playbook.key)
        stages = list(current.stages.order_by("order").prefetch_related("owners", "criteria"))
        wanted = _checked_probabilities(stages, probabilities)
        before = {s.key: s.probability for s in stages if s.key in wanted}
        if all(before[key] == value for key, value in wanted.items()):
            return current
        new = _playbook_copy(current, stages, wanted)
        audit(
            "playbook.probabilities_accept",
            new,
            actor=actor,
            before=before,
            after={**{key: wanted[key] for key in before}, "version": new.version},
        )
    return new


def _lock_current(key: str) -> Playbook:
    """The current version of `key`, locked. A concurrent new version makes the locked row stop
    being current once the other writer commits (PostgreSQL then skips it): read again."""
    for _attempt in range(3):
        found = Playbook.objects.select_for_update().filter(key=key, is_current=True).first()
        if found is not None:
            return found
    return Playbook.objects.select_for_update().get(key=key, is_current=True)


def _checked_probabilities(stages: list[Stage], probabilities: Any) -> dict[str, int]:
    """The new probabilities, or ValidationFailed naming each wrong one (nothing is written)."""
    if not isinstance(probabilities, dict) or not probabilities:
        raise ValidationFailed(
            _("Name at least one open stage and its new probability."),
            details={"probabilities": _("required")},
        )
    open_keys = {s.key for s in stages if s.kind == StageKind.OPEN}
    problems: dict[str, str] = {}
    for key, value in probabilities.items():
        field = f"probabilities.{key}"
        if key not in open_keys:
            problems[field] = _("not an open stage of this playbook (open stages: %(keys)s)") % {
                "keys": ", ".join(s.key for s in stages if s.kind == StageKind.OPEN)
            }
        elif isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
            problems[field] = _("%(value)r: a whole percent from 0 to 100") % {"value": value}
    if problems:
        raise ValidationFailed(
            _("Some stage probabilities are not valid; see errors."), details=problems
        )
    after = [
        (s.key, probabilities.get(s.key, s.probability)) for s in stages if s.kind == StageKind.OPEN
    ]
    for (upper, high), (lower, low) in pairwise(after):
        if low < high:
            raise ValidationFailed(
                _(
                    "Open stages' probabilities must not decrease down the funnel: %(lower)s "
                    "(%(low)s %%) would come after %(upper)s (%(high)s %%)."
                )
                % {"lower": lower, "low": low, "upper": upper, "high": high},
                details={f"probabilities.{lower}": _("lower than the stage before it")},
            )
    return dict(probabilities)


def _copy_fields(row: Any, **changes: Any) -> dict[str, Any]:
    """The row's own values (every concrete field but the id), with `changes`."""
    values = {
        f.attname: getattr(row, f.attname) for f in row._meta.concrete_fields if not f.primary_key
    }
    return {**values, **changes}


def _playbook_copy(
    current: Playbook, stages: list[Stage], probabilities: dict[str, int]
) -> Playbook:
    """Version + 1 of `current`, identical but for the stages' probabilities; `current` stops
    being the current version."""
    Playbook.objects.filter(pk=current.pk).update(is_current=False)
    new = Playbook.objects.create(
        **_copy_fields(current, version=current.version + 1, is_current=True, loaded_at=clock.now())
    )
    for stage in stages:
        copy = Stage.objects.create(
            **_copy_fields(
                stage,
                playbook_id=new.pk,
                probability=probabilities.get(stage.key, stage.probability),
            )
        )
        copy.owners.set(stage.owners.all())
        Criterion.objects.bulk_create(
            Criterion(**_copy_fields(c, stage_id=copy.pk)) for c in stage.criteria.all()
        )
    return new
