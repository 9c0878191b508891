"""What a client needs to fill its forms: playbooks (both languages), roles, lost reasons,
industries, and who the caller is."""

from typing import Any

from django.utils.translation import gettext as _
from ninja import Router, Schema
from pydantic import Field

from loudou.api.auth import ApiRequest
from loudou.api.schemas.common import BranchRef, Named, Str60, branch_ref
from loudou.core.errors import NotFound
from loudou.core.i18n import localized
from loudou.customers.models import Industry
from loudou.org.models import Branch
from loudou.pipeline.models import LostReason
from loudou.pipeline.page import people_to_staff
from loudou.playbooks.models import Playbook, Role
from loudou.playbooks.selectors import playbook_as_dict, playbook_get

playbooks = Router(tags=["playbooks"])
reference = Router(tags=["reference"])


class Bilingual(Schema):
    zh: str
    en: str


class MainWork(Schema):
    zh: str = ""
    en: str = ""


class CriterionOut(Schema):
    key: str
    kind: str = Field(description="check (evidence), field (a condition), approval (立项).")
    condition: str
    required: bool
    text: Bilingual


class OwnerRole(Schema):
    key: str
    name: Bilingual


class StageOut(Schema):
    key: str
    order: int
    kind: str = Field(description="account (qualifies accounts), open, won.")
    name: Bilingual
    definition: Bilingual
    probability: int
    forecast_category: str
    max_days: int | None
    owners: list[OwnerRole]
    main_work: list[MainWork]
    criteria: list[CriterionOut]


class PlaybookSummary(Schema):
    key: str
    version: int
    default: bool
    name: Bilingual
    description: Bilingual


class PlaybookOut(PlaybookSummary):
    stages: list[StageOut]


class Colleague(Schema):
    id: int
    username: str
    name: str
    branch: BranchRef | None
    job_role: Named | None
    access_level: str


class BranchOut(BranchRef):
    parent_id: int | None


class Me(Schema):
    id: int
    username: str
    name: str
    access_level: str
    branch: BranchRef | None
    job_role: Named | None
    language: str = Field(description="Empty: follows Accept-Language.")
    time_zone: str


def _summary(p: Playbook) -> dict[str, Any]:
    return {
        "key": p.key,
        "version": p.version,
        "default": p.is_default,
        "name": {"zh": p.name_zh, "en": p.name_en},
        "description": {"zh": p.description_zh, "en": p.description_en},
    }


@playbooks.get("", response=list[PlaybookSummary], summary="Playbooks")
def playbook_list(request: ApiRequest) -> Any:
    """The current version of every playbook."""
    return [_summary(p) for p in Playbook.objects.filter(is_current=True).order_by("key")]


@playbooks.get("/{key}", response=PlaybookOut, summary="One playbook with stages and criteria")
def playbook_detail(request: ApiRequest, key: Str60, version: int | None = None) -> Any:
    """A playbook (the current version, or `version`) with its stages, owner roles, main work
    and criteria, in Chinese and English."""
    if version is not None and not 1 <= version <= 2**31 - 1:
        raise NotFound(_("No such playbook."))
    try:
        return playbook_as_dict(playbook_get(key, version=version))
    except NotFound:
        raise NotFound(_("No such playbook.")) from None


@reference.get("/me", response=Me, summary="You")
def me(request: ApiRequest) -> Any:
    """The signed-in user (or the token's owner): access level, branch, job role, language."""
    user = request.auth
    return {
        "id": user.pk,
        "username": user.username,
        "name": str(user),
        "access_level": user.level,
        "branch": branch_ref(user.branch),
        "job_role": _job_role(user),
        "language": user.language,
        "time_zone": user.time_zone,
    }


def _job_role(user: Any) -> dict[str, str] | None:
    role = user.job_role
    return {"key": role.key, "name": localized(role, "name")} if role else None


@reference.get("/users", response=list[Colleague], summary="Colleagues")
def colleague_list(request: ApiRequest) -> Any:
    """Active colleagues with a branch, for project teams, activities and (managers) owners."""
    return [
        {
            "id": u.pk,
            "username": u.username,
            "name": str(u),
            "branch": branch_ref(u.branch),
            "job_role": _job_role(u),
            "access_level": u.level,
        }
        for u in people_to_staff()
    ]


@reference.get("/branches", response=list[BranchOut], summary="Branches")
def branch_list(request: ApiRequest) -> Any:
    """The branch tree (each with its parent), for the `branch` filters."""
    return [
        {**(branch_ref(b) or {}), "parent_id": b.parent_id} for b in Branch.objects.order_by("code")
    ]


@reference.get("/roles", response=list[Named], summary="Project team roles")
def role_list(request: ApiRequest) -> Any:
    """The roles people play on project teams."""
    return [{"key": r.key, "name": localized(r, "name")} for r in Role.objects.all()]


@reference.get("/lost-reasons", response=list[Named], summary="Lost reasons")
def lost_reason_list(request: ApiRequest) -> Any:
    """The active reasons an opportunity is lost, for `lose`."""
    rows = LostReason.objects.filter(active=True)
    return [{"key": r.key, "name": localized(r, "name")} for r in rows]


@reference.get("/industries", response=list[Named], summary="Industries")
def industry_list(request: ApiRequest) -> Any:
    """The industries accounts belong to."""
    return [{"key": i.key, "name": localized(i, "name")} for i in Industry.objects.all()]
