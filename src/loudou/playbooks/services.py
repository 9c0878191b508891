"""Writes to playbooks: loading a validated playbook file as a new version."""

from pathlib import Path
from typing import Any

from django.db import transaction

from loudou.core import clock
from loudou.core.audit import audit
from loudou.playbooks.loader import (
    PlaybookFileError,
    PlaybookSpec,
    Problem,
    read_playbook_file,
)
from loudou.playbooks.models import Criterion, Playbook, Role, Stage

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
