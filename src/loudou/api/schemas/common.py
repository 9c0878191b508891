"""Shared schema pieces: strict inputs, ids, amounts, references to users, branches, stages."""

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from ninja import Schema
from pydantic import ConfigDict, Field, StringConstraints, field_validator

# Database ids are 64-bit; a larger number is no id (and would overflow the database driver).
MAX_ID = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Version = Annotated[int, Field(ge=1, le=2**31 - 1)]
Amount = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=2)]
Percent = Annotated[int, Field(ge=0, le=100)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$")]
# Dates a sales process can mean; year 1 or 9999 would overflow date arithmetic downstream.
FIRST_DAY, LAST_DAY = dt.date(1900, 1, 1), dt.date(2999, 12, 31)
Day = Annotated[dt.date, Field(ge=FIRST_DAY, le=LAST_DAY)]


# Strings as long as their database columns (PostgreSQL refuses longer ones).
Str18 = Annotated[str, StringConstraints(max_length=18)]
Str40 = Annotated[str, StringConstraints(max_length=40)]
Str60 = Annotated[str, StringConstraints(max_length=60)]
Str120 = Annotated[str, StringConstraints(max_length=120)]
Str200 = Annotated[str, StringConstraints(max_length=200)]
Str254 = Annotated[str, StringConstraints(max_length=254)]
Name120 = Annotated[str, StringConstraints(min_length=1, max_length=120)]
Name200 = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(max_length=10_000)]


def _no_nul(value: Any) -> Any:
    """Reject the NUL character anywhere in a string (PostgreSQL cannot store it)."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain the NUL character")
    if isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key)
            _no_nul(item)
    if isinstance(value, list):
        for item in value:
            _no_nul(item)
    return value


class In(Schema):
    """An input body: unknown fields are refused, strings never carry NUL."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_nul(cls, value: Any) -> Any:
        return _no_nul(value)


class UserRef(Schema):
    id: int
    username: str
    name: str


class BranchRef(Schema):
    id: int
    code: str
    name: str


class StageRef(Schema):
    key: str
    name: str
    order: int
    kind: str


class Named(Schema):
    """A catalogue entry: its key and its name in the caller's language."""

    key: str
    name: str


class Deleted(Schema):
    deleted: bool


def user_ref(user: Any) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "username": user.username, "name": str(user)}


def branch_ref(branch: Any) -> dict[str, Any] | None:
    from loudou.core.i18n import is_chinese

    if branch is None:
        return None
    name = branch.name if is_chinese() else (branch.name_en or branch.name)
    return {"id": branch.pk, "code": branch.code, "name": name}


def stage_ref(stage: Any) -> dict[str, Any]:
    return {"key": stage.key, "name": stage.name, "order": stage.order, "kind": stage.kind}


def page_params(page: int, page_size: int, total: int) -> tuple[int, int, int]:
    """(offset, limit, pages) for a 1-based page."""
    pages = max(1, -(-total // page_size))
    return (page - 1) * page_size, page_size, pages


class PageMeta(Schema):
    count: int = Field(description="Rows matching the filters, on every page.")
    page: int
    page_size: int
    pages: int


def paginate(rows: Any, page: int, page_size: int, convert: Any) -> dict[str, Any]:
    """One page of a queryset with the total, each row turned into a dict by `convert`."""
    total = rows.count()
    offset, limit, pages = page_params(page, page_size, total)
    return {
        "count": total,
        "page": page,
        "page_size": page_size,
        "pages": pages,
        "results": [convert(row) for row in rows[offset : offset + limit]],
    }


def iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None
