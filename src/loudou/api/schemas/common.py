"""Shared schema pieces: strict inputs, ids, amounts, references to users, branches, stages."""

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from ninja import Schema
from pydantic import ConfigDict, Field, StringConstraints, field_validator

from loudou.api.pagination import CURSOR_HELP, MAX_CURSOR_LENGTH

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


# The paging parameters every long list takes (shared so that each list documents them alike).
PAGE = Field(default=1, ge=1, le=100_000, description="Page number, from 1 (page paging).")
PAGE_SIZE = Field(default=50, ge=1, le=200, description="Rows per page.")


CURSOR = Field(default=None, max_length=MAX_CURSOR_LENGTH, description=CURSOR_HELP)


class PageMeta(Schema):
    count: int = Field(description="Rows matching the filters, on every page.")
    page: int
    page_size: int
    pages: int


class CursorMeta(Schema):
    """A page of a list walked by cursor (`?cursor=`): no total, a cursor to the next page."""

    page_size: int
    next_cursor: str | None = Field(
        description="Pass it as `cursor` for the next page; null on the last page."
    )


def iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None
