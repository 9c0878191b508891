"""Reads of playbooks."""

from django.utils.translation import gettext as _

from loudou.core.errors import NotFound
from loudou.playbooks.models import Playbook


def playbook_get(key: str | None = None, *, version: int | None = None) -> Playbook:
    """The current version of playbook `key` (default: the default playbook), or NotFound."""
    qs = Playbook.objects.all()
    if key is None:
        found = (
            qs.filter(is_default=True, is_current=True).first()
            or qs.filter(is_current=True).order_by("key").first()
        )
    elif version is not None:
        found = qs.filter(key=key, version=version).first()
    else:
        found = qs.filter(key=key, is_current=True).first()
    if found is None:
        raise NotFound(
            _("No playbook %(key)s%(version)s.")
            % {"key": key or _("(default)"), "version": f" v{version}" if version else ""}
        )
    return found


def playbook_as_dict(playbook: Playbook) -> dict:
    """The playbook with its stages, criteria, owners and main work, in both languages."""
    return {
        "key": playbook.key,
        "version": playbook.version,
        "default": playbook.is_default,
        "name": {"zh": playbook.name_zh, "en": playbook.name_en},
        "description": {"zh": playbook.description_zh, "en": playbook.description_en},
        "stages": [
            {
                "key": s.key,
                "order": s.order,
                "kind": s.kind,
                "name": {"zh": s.name_zh, "en": s.name_en},
                "definition": {"zh": s.definition_zh, "en": s.definition_en},
                "probability": s.probability,
                "forecast_category": s.forecast_category,
                "max_days": s.max_days,
                "owners": [
                    {"key": r.key, "name": {"zh": r.name_zh, "en": r.name_en}}
                    for r in sorted(s.owners.all(), key=lambda r: (r.order, r.key))
                ],
                "main_work": s.main_work,
                "criteria": [
                    {
                        "key": c.key,
                        "kind": c.kind,
                        "condition": c.condition,
                        "required": c.required,
                        "text": {"zh": c.text_zh, "en": c.text_en},
                    }
                    for c in sorted(s.criteria.all(), key=lambda c: c.order)
                ],
            }
            for s in playbook.ordered_stages()
        ],
    }
