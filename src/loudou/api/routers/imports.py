"""Imports through the API: the Import page's journey for programs, on the same code
(`loudou.interop.uploads`, `review` and `runs`).

1. `POST /imports` (multipart: `file`, optional `history`, the options as form fields) keeps
   the file and answers the dry run: what the import would do, or every problem of the file.
2. `PUT /imports/{token}/mapping` changes the stage, owner and column mapping (and options);
   the dry run is done again.
3. `POST /imports/{token}/confirm` starts the import in the background: 202 with the run.
4. `GET /import-runs/{id}` follows it (status, progress, report); `GET /import-runs` lists them.

Administrators and managers import (a manager only deals of the branches they manage); anyone
else gets 403. An upload belongs to whoever sent it: anyone else's token is 404."""

from typing import Any, Literal

from django.http import HttpResponse
from django.utils.translation import get_language, gettext_noop
from django.utils.translation import gettext as _
from ninja import File, Form, Router, Schema
from ninja.files import UploadedFile
from ninja.responses import Status
from pydantic import Field

from loudou.api.auth import ApiRequest
from loudou.api.schemas.common import Id, Str40, Str60, Str200
from loudou.core.errors import NotFound, PermissionDenied, ValidationFailed
from loudou.interop import review, runs, uploads
from loudou.interop.models import ImportRun
from loudou.interop.template import template_xlsx
from loudou.org.models import User
from loudou.playbooks.selectors import playbook_get

router = Router(tags=["imports"])
runs_router = Router(tags=["imports"])
Format = Literal["native", "salesforce", "hubspot", "pipedrive", "odoo"]
# Marked here, translated when raised (the same texts as the Import page's).
UPLOAD_GONE = gettext_noop("This upload does not exist (any more): upload the file again.")
NO_RUN = gettext_noop("No such import.")
OPTIONAL_FILE = File(None)  # the Salesforce OpportunityHistory export, when there is one
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class ImportOptions(Schema):
    format: Format = Field(description="What exported the file.")
    playbook: Str60 | None = Field(default=None, description="Playbook key; default playbook.")
    encoding: Literal["", "gbk", "gb18030", "utf-8"] = Field(
        default="", description="The file's encoding; empty: detected."
    )
    dayfirst: bool = Field(default=False, description="Read 01/03/2026 as 1 March.")
    default_owner: Str200 | None = Field(
        default=None, description="User name owning the deals whose owner loudou does not know."
    )
    currency: Str40 = Field(default="CNY", description="For amounts the file gives none for.")


class Mapping(Schema):
    stages: dict[Str200, Str60] = Field(
        default_factory=dict,
        description="The file's stage name → a stage key of the playbook, or won / lost.",
    )
    owners: dict[Str200, Str200] = Field(
        default_factory=dict, description="The file's owner name → a loudou user name."
    )
    columns: dict[Str40, Str200] = Field(
        default_factory=dict, description="Our field → the file's column header."
    )
    encoding: Literal["", "gbk", "gb18030", "utf-8"] | None = None
    dayfirst: bool | None = None
    currency: Str40 | None = None


class Problem(Schema):
    sheet: str
    row: int | str
    column: str
    value: str
    reason: str


class DryRunOut(Schema):
    token: str = Field(description="The upload, for the mapping and the confirmation.")
    outcome: Literal["ok", "refused", "error"] = Field(
        description="ok: importable; refused: the file has problems; error: nothing could be "
        "checked (see error)."
    )
    report: dict[str, Any] = Field(
        description="What the import would do: new, already_imported, updated, created, "
        "by_stage, mapping, mapping_how, mapping_yaml, notes (docs/import.md)."
    )
    problems: list[Problem]
    error: str


class RunOut(Schema):
    id: Id
    format: str
    files: list[str]
    status: Literal["queued", "running", "done", "refused", "failed"]
    created_at: str
    finished_at: str | None
    progress: dict[str, Any] = Field(description="phase, done, total, percent")
    report: dict[str, Any]
    error: str


def _require_importer(request: ApiRequest) -> User:
    """The caller, who must be allowed to import (starting an import, listing them)."""
    user = request.auth
    if not uploads.can_import(user):
        raise PermissionDenied(_("Only administrators and managers may import."))
    return user


def _importer_of(request: ApiRequest, what: str) -> User:
    """The caller, for an upload or a run: to anyone who may not import, it does not exist."""
    user = request.auth
    if not uploads.can_import(user):
        raise NotFound(_(what))
    return user


def _dry_run_out(upload: uploads.Upload, result: review.DryRun) -> dict[str, Any]:
    return {
        "token": upload.token,
        "outcome": result.outcome,
        "report": result.report,
        "problems": result.problems,
        "error": result.error,
    }


def _run_out(run: ImportRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "format": run.format,
        "files": run.files,
        "status": run.status,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "progress": runs.run_progress(run),
        "report": run.report,
        "error": run.error,
    }


def _owner(name: str | None) -> User | None:
    if not name:
        return None
    user = User.objects.filter(username=name, is_active=True).first()
    if user is None:
        raise ValidationFailed(
            _("No user %(u)s.") % {"u": name}, details={"default_owner": _("unknown")}
        )
    return user


@router.post(
    "",
    response={201: DryRunOut},
    summary="Upload a CRM export; answers the dry run",
)
def import_upload(
    request: ApiRequest,
    options: Form[ImportOptions],
    file: File[UploadedFile],
    history: UploadedFile | None = OPTIONAL_FILE,
) -> Status[dict[str, Any]]:
    """Keep a CRM export (and, for Salesforce, its OpportunityHistory export) for an import and
    answer its dry run: what the import would do, or every problem of the file. Files up to
    20 MB, CSV (UTF-8, GBK, GB18030, detected) or XLSX."""
    actor = _require_importer(request)
    playbook = _playbook(options.playbook)
    files = []
    for upload in (file, history):
        if upload is None:
            continue
        if upload.size and upload.size > uploads.MAX_UPLOAD_BYTES:
            raise ValidationFailed(_("The file is larger than 20 MB."), details={"file": "size"})
        files.append((upload.name or "upload.csv", upload.read()))
    kept = uploads.upload_create(
        actor=actor,
        fmt=options.format,
        playbook=playbook,
        files=files,
        encoding=options.encoding,
        dayfirst=options.dayfirst,
        default_owner=_owner(options.default_owner),
        currency=options.currency,
    )
    return Status(
        201, _dry_run_out(kept, review.upload_dry_run(kept, actor=actor, playbook=playbook))
    )


def _playbook(key: str | None) -> Any:
    try:
        return playbook_get(key)
    except NotFound:
        raise ValidationFailed(
            _("No such playbook: %(key)s.") % {"key": key}, details={"playbook": "unknown"}
        ) from None


@router.get(
    "/template.xlsx",
    summary="loudou's import template (XLSX, in the caller's language)",
    openapi_extra={
        "responses": {
            "200": {
                "description": "The workbook.",
                "content": {XLSX: {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
def import_template(request: ApiRequest) -> HttpResponse:
    """loudou's import template: a workbook with the sheets accounts, contacts, opportunities
    and history, headers in the caller's language."""
    del request
    response = HttpResponse(template_xlsx(get_language() or "en"), content_type=XLSX)
    response["Content-Disposition"] = 'attachment; filename="loudou-import-template.xlsx"'
    return response


@router.get("/{token}", response=DryRunOut, summary="The upload's latest dry run")
def import_dry_run(request: ApiRequest, token: str) -> dict[str, Any]:
    """The latest dry run of the upload `token` (done again if there is none)."""
    actor = _importer_of(request, UPLOAD_GONE)
    upload = uploads.upload_get(actor=actor, token=token)
    result = review.upload_last_dry_run(upload) or review.upload_dry_run(
        upload, actor=actor, playbook=_playbook(upload.playbook)
    )
    return _dry_run_out(upload, result)


@router.put("/{token}/mapping", response=DryRunOut, summary="Change the mapping; dry run again")
def import_mapping(request: ApiRequest, token: str, payload: Mapping) -> dict[str, Any]:
    """Replace the upload's stage, owner and column mapping (and, when given, its encoding,
    day-first and currency options); answers the dry run done again with them."""
    actor = _importer_of(request, UPLOAD_GONE)
    upload = uploads.upload_get(actor=actor, token=token)
    options = dict(upload.options)
    for key in ("encoding", "dayfirst", "currency"):
        value = getattr(payload, key)
        if value is not None:
            options[key] = value
    uploads.upload_update(
        upload,
        mapping={"stages": payload.stages, "owners": payload.owners, "columns": payload.columns},
        options=options,
        actor=actor,
    )
    upload = uploads.upload_get(actor=actor, token=token)
    playbook = _playbook(upload.playbook)
    return _dry_run_out(upload, review.upload_dry_run(upload, actor=actor, playbook=playbook))


@router.post(
    "/{token}/confirm",
    response={202: RunOut},
    summary="Import for real, in the background",
)
def import_confirm(request: ApiRequest, token: str) -> Status[dict[str, Any]]:
    """Import the upload for real, in the background (202 with the run to follow). Refused (422)
    while its dry run finds problems; a second confirmation gives the same run back."""
    actor = _importer_of(request, UPLOAD_GONE)
    upload = uploads.upload_get(actor=actor, token=token)
    playbook = _playbook(upload.playbook)
    last = review.upload_last_dry_run(upload) or review.upload_dry_run(
        upload, actor=actor, playbook=playbook
    )
    if last.outcome != "ok":
        raise ValidationFailed(
            last.error or _("The file has problems: fix them (see the dry run) first."),
            details={"token": last.outcome},
        )
    run = runs.import_run_queue(actor=actor, upload=upload, playbook=playbook)
    if run.status == "queued":
        runs.import_run_start(run)
        run.refresh_from_db()
    return Status(202, _run_out(run))


@runs_router.get("", response=list[RunOut], summary="Imports: your own (all, for administrators)")
def import_runs(request: ApiRequest) -> list[dict[str, Any]]:
    """The latest 100 imports: the caller's own; every one for an administrator."""
    _require_importer(request)
    return [_run_out(run) for run in runs.import_runs_visible_to(request.auth)[:100]]


@runs_router.get("/{int:run_id}", response=RunOut, summary="One import: status, progress, report")
def import_run(request: ApiRequest, run_id: int) -> dict[str, Any]:
    """One import: its status (queued, running, done, refused, failed), progress and report."""
    _importer_of(request, NO_RUN)
    return _run_out(runs.import_run_get(request.auth, run_id))
