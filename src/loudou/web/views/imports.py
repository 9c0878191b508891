"""The Import page: upload a CRM export, preview it, map its columns, stages and owners, read the
dry run's report, then confirm and follow the import's progress to its report.

The importer is the command line's (`loudou.interop.run.import_sheets`, through
`loudou.interop.uploads`, `review` and `runs`); these views only collect the user's choices and
show its answers.
Administrators and managers import; everyone else gets 403 on every URL here."""

import contextlib
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.http import content_disposition_header
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from loudou.core.errors import LoudouError, NotFound, PermissionDenied, ValidationFailed
from loudou.interop import review, runs, uploads
from loudou.interop.models import ImportStatus
from loudou.interop.tables import Sheet, as_text
from loudou.interop.template import template_xlsx
from loudou.org.models import User
from loudou.playbooks.models import Playbook, StageKind
from loudou.playbooks.selectors import playbook_get
from loudou.web.views.base import acting_user, int_param, login_required, require_post

PREVIEW_ROWS = 10
PROBLEMS_PER_PAGE = 50
RUNS_PER_PAGE = 20

# The formats, named and described in the user's language (the CLI's DESCRIPTIONS are English).
FORMATS = {
    "native": (gettext_lazy("loudou template"),
               gettext_lazy("loudou's own template: accounts, contacts, opportunities and "
                            "history, headers in Chinese or English.")),
    "salesforce": ("Salesforce",
                   gettext_lazy("An Opportunity report or Data Loader export; add the "
                                "OpportunityHistory export to bring each deal's stage history.")),
    "hubspot": ("HubSpot",
                gettext_lazy("A deals export; its “Date entered <stage>” columns become the "
                             "deals' history.")),
    "pipedrive": ("Pipedrive",
                  gettext_lazy("A deals list export (Deal - Title, Deal - Stage, Deal - Status, "
                               "…).")),
    "odoo": ("Odoo",
             gettext_lazy("A crm.lead export (Opportunity, Customer, Stage, Expected Revenue, "
                          "…).")),
}  # fmt: skip
ENCODING_LABELS = {
    "": gettext_lazy("Detect automatically"),
    "gbk": gettext_lazy("GBK (Excel on Chinese Windows)"),
    "gb18030": "GB18030",
    "utf-8": "UTF-8",
}
# Our deal fields, as the column mapping names them.
FIELDS = {
    "external_id": gettext_lazy("Id in the source"),
    "name": gettext_lazy("Deal name"),
    "account": gettext_lazy("Account"),
    "owner": gettext_lazy("Owner"),
    "stage": gettext_lazy("Stage"),
    "status": gettext_lazy("Status (open, won, lost)"),
    "amount": gettext_lazy("Amount"),
    "currency": gettext_lazy("Currency"),
    "close_date": gettext_lazy("Expected close date"),
    "created_at": gettext_lazy("Created on"),
    "closed_at": gettext_lazy("Closed on"),
    "won_at": gettext_lazy("Won on"),
    "lost_at": gettext_lazy("Lost on"),
    "stage_changed_at": gettext_lazy("Last stage change"),
    "probability": gettext_lazy("Probability"),
    "is_won": gettext_lazy("Won (yes or no)"),
    "is_closed": gettext_lazy("Closed (yes or no)"),
    "need": gettext_lazy("Need or description"),
    "lost_reason": gettext_lazy("Lost reason"),
    "pipeline": gettext_lazy("Pipeline"),
    "active": gettext_lazy("Active (no: archived, lost)"),
    "type": gettext_lazy("Type (lead or opportunity)"),
}
ENCODING_NAMES = {"xlsx": gettext_lazy("Excel workbook"), "utf-8-sig": "UTF-8 (BOM)"}


def importer_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed in (else the login page) and an administrator or manager (else 403)."""

    @login_required
    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not uploads.can_import(request.user):
            raise PermissionDenied(_("Only administrators and managers may import."))
        return view(request, *args, **kwargs)

    return guarded


def _is_htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


# --- step 1: upload -------------------------------------------------------------------------


def _playbooks() -> list[Playbook]:
    return list(Playbook.objects.filter(is_current=True).order_by("-is_default", "key"))


def _start_page(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    user = acting_user(request)
    runs.import_runs_interrupt_stale()
    page = Paginator(runs.import_runs_visible_to(user), RUNS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    form = {"format": "salesforce", "playbook": "", "encoding": "", "currency": "CNY"}
    form.update(context.pop("form", {}))
    context.update(
        formats=FORMATS,
        encodings=ENCODING_LABELS,
        playbooks=_playbooks(),
        owners=uploads.importable_owners(user),
        form=form,
        runs_page=page,
        sees_all=user.level == "admin",
        max_mb=uploads.MAX_UPLOAD_BYTES // (1024 * 1024),
    )
    return render(request, "web/imports/start.html", context, status=status)


@importer_required
def import_start(request: HttpRequest) -> HttpResponse:
    """The upload form and the past imports; a POST keeps the file and opens its preview."""
    if request.method != "POST":
        return _start_page(request, {})
    actor = acting_user(request)
    post = request.POST
    form: dict[str, Any] = {
        k: post.get(k, "") for k in ("format", "playbook", "encoding", "currency")
    }
    form["dayfirst"] = bool(post.get("dayfirst"))
    form["default_owner"] = int_param(post.get("default_owner"))
    try:
        playbook = playbook_get(form["playbook"] or None)
        files = _uploaded_files(request, form["format"])
        upload = uploads.upload_create(
            actor=actor,
            fmt=form["format"],
            playbook=playbook,
            files=files,
            encoding=form["encoding"],
            dayfirst=form["dayfirst"],
            default_owner=_user(form["default_owner"]),
            currency=form["currency"],
        )
    except LoudouError as error:
        return _start_page(request, {"form": form, "error": error.message}, status=400)
    return redirect("web:import-review", token=upload.token)


def _user(pk: int | None) -> User | None:
    """The user chosen in a select (the service checks that the importer may choose them)."""
    if pk is None:
        return None
    found = User.objects.filter(pk=pk, is_active=True).first()
    if found is None:
        raise ValidationFailed(_("No such user."), details={"default_owner": _("invalid")})
    return found


def _uploaded_files(request: HttpRequest, fmt: str) -> list[tuple[str, bytes]]:
    """The uploaded file, and Salesforce's OpportunityHistory file if given; refused unread when
    larger than the limit."""
    chosen = [request.FILES.get("file")]
    if fmt == "salesforce":
        chosen.append(request.FILES.get("history"))
    if chosen[0] is None:
        raise ValidationFailed(_("Choose the file to import."), details={"file": _("required")})
    files = []
    for upload in chosen:
        if upload is None:
            continue
        if upload.size is not None and upload.size > uploads.MAX_UPLOAD_BYTES:
            raise ValidationFailed(
                _("%(f)s is larger than %(n)s MB: split it, or import it with `loudou import`.")
                % {"f": upload.name, "n": uploads.MAX_UPLOAD_BYTES // (1024 * 1024)}
            )
        files.append((upload.name or "upload.csv", upload.read()))
    return files


@importer_required
def import_template(request: HttpRequest) -> HttpResponse:
    """loudou's import template as an XLSX workbook, in the user's language."""
    language = get_language() or "en"
    response = HttpResponse(
        template_xlsx(language),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    name = "loudou-导入模板.xlsx" if language.startswith("zh") else "loudou-import-template.xlsx"
    response["Content-Disposition"] = content_disposition_header(True, name)
    return response


# --- steps 2 and 3: preview, mapping, dry run -------------------------------------------------


def _preview(sheets: list[Sheet]) -> list[dict[str, Any]]:
    return [
        {
            "name": sheet.name,
            "encoding": ENCODING_NAMES.get(sheet.encoding, sheet.encoding.upper()),
            "headers": sheet.headers,
            "rows": [
                [as_text(v) for v in row[: len(sheet.headers)]] for row in sheet.rows[:PREVIEW_ROWS]
            ],
            "count": len(sheet.rows),
        }
        for sheet in sheets
    ]


def _stage_choices(playbook: Playbook) -> list[tuple[str, Any]]:
    stages = playbook.ordered_stages()
    return [(s.key, s) for s in stages if s.kind == StageKind.OPEN] + [
        ("won", _("Won")),
        ("lost", _("Lost (in the stage it was in)")),
    ]


def _how(how: str) -> str:
    # The importer says "file" and "name" as codes; a probability comes translated already.
    return {
        "file": _("your choice"),
        "name": _("by name"),
        "last import": _("as in the last import"),
    }.get(how, how)


def _review_context(
    request: HttpRequest, upload: uploads.Upload, dry: review.DryRun | None = None
) -> dict[str, Any]:
    """Everything the preview, the mapping form and the dry-run report show."""
    actor = acting_user(request)
    playbook = playbook_get(upload.playbook)
    try:
        sheets = upload.sheets()
    except LoudouError:
        sheets = []  # the dry run says why (an encoding that does not fit the file)
    if dry is None:
        dry = review.upload_dry_run(upload, actor=actor, playbook=playbook)
    headers, automatic, chosen = review.column_choices(
        upload.format, sheets, upload.mapping.get("columns", {})
    )
    required = review.required_fields(upload.format)
    columns = [
        {
            "key": key,
            "label": FIELDS.get(key, key),
            "required": key in required,
            "chosen": chosen.get(key, ""),
            "automatic": automatic.get(key, ""),
        }
        for key in review.deal_columns(upload.format)
    ]
    owners = uploads.importable_owners(actor)
    managed = {u.pk for u in owners}
    default_owner = upload.default_owner()
    names = review.owner_names(upload.format, sheets, upload.mapping.get("columns", {}))
    owner_rows = []
    for name, matched in review.owner_matches(names).items():
        chosen_name = upload.mapping.get("owners", {}).get(name, "")
        chosen_user = next((u for u in owners if u.username == chosen_name), None)
        effective = chosen_user or matched or default_owner
        owner_rows.append(
            {
                "name": name,
                "matched": matched,
                "chosen": chosen_name,
                "effective": effective,
                "outside": effective is not None and effective.pk not in managed,
            }
        )
    mapping = dry.report.get("mapping") or {}
    how = dry.report.get("mapping_how") or {}
    stage_names = {s.key: s for s in playbook.ordered_stages()}
    return {
        "upload": upload,
        "playbook": playbook,
        "format_label": FORMATS[upload.format][0],
        "preview": _preview(sheets),
        "headers": headers,
        "columns": columns,
        "stage_rows": [
            {"name": name, "target": target, "how": _how(how.get(name, ""))}
            for name, target in mapping.items()
        ],
        "stage_choices": _stage_choices(playbook),
        "stage_names": stage_names,
        "owner_rows": owner_rows,
        "owners": owners,
        "default_owner": default_owner,
        "encodings": ENCODING_LABELS,
        "dry": dry,
        "by_stage": [
            (stage_names.get(key), key, count)
            for key, count in (dry.report.get("by_stage") or {}).items()
        ],
        "problems": _problems_page(request, dry.problems),
        "problems_url": reverse("web:import-problems", args=[upload.token]),
    }


def _problems_page(request: HttpRequest, problems: list[dict[str, Any]]) -> Any:
    return Paginator(problems, PROBLEMS_PER_PAGE).get_page(request.GET.get("page"))


@importer_required
def import_review(request: HttpRequest, token: str) -> HttpResponse:
    """Step 2 and 3: the file's first rows, the column, stage and owner mappings, and the
    report of a dry run with them (nothing saved)."""
    upload = uploads.upload_get(actor=acting_user(request), token=token)
    return render(request, "web/imports/review.html", _review_context(request, upload))


def _posted_mapping(request: HttpRequest, upload: uploads.Upload) -> dict[str, dict[str, str]]:
    """The mapping the form says: only the choices that differ from the automatic ones, so the
    dry run still shows which were chosen by name or probability."""
    post = request.POST
    sheets: list[Sheet] = []
    with contextlib.suppress(LoudouError):  # unreadable: only the mapping's choices are kept
        sheets = upload.sheets()
    headers, automatic, _chosen = review.column_choices(upload.format, sheets, {})
    columns = {}
    for key in review.deal_columns(upload.format):
        header = post.get(f"column-{key}", "")
        if header in headers and header != automatic.get(key):
            columns[key] = header
    stages: dict[str, str] = {}
    previous = upload.mapping.get("stages", {})
    for i in range(int_param(post.get("stage-count")) or 0):
        name, target = post.get(f"stage-{i}-name", ""), post.get(f"stage-{i}-target", "")
        if not name or not target:
            continue
        if target != post.get(f"stage-{i}-shown", ""):
            stages[name] = target
        elif name in previous:
            stages[name] = previous[name]
    owners = {}
    for i in range(int_param(post.get("owner-count")) or 0):
        name, username = post.get(f"owner-{i}-name", ""), post.get(f"owner-{i}-user", "")
        if name and username:
            owners[name] = username
    return {"stages": stages, "owners": owners, "columns": columns}


@importer_required
@require_post
def import_check(request: HttpRequest, token: str) -> HttpResponse:
    """Keep the mapping and options the form says and run the dry run again; htmx swaps the
    mapping and the report, a plain form post goes back to the page."""
    actor = acting_user(request)
    upload = uploads.upload_get(actor=actor, token=token)
    options = {
        "encoding": request.POST.get("encoding", ""),
        "dayfirst": bool(request.POST.get("dayfirst")),
        "default_owner": int_param(request.POST.get("default_owner")),
        "currency": request.POST.get("currency", ""),
    }
    try:
        uploads.upload_update(
            upload, mapping=_posted_mapping(request, upload), options=options, actor=actor
        )
    except LoudouError as error:
        context = _review_context(request, upload, review.upload_last_dry_run(upload))
        context.update(error=error.message, posted=request.POST)
        return render(request, "web/imports/_review.html", context, status=400)
    if not _is_htmx(request):
        return redirect("web:import-review", token=upload.token)
    return render(request, "web/imports/_review.html", _review_context(request, upload))


@importer_required
def import_problems(request: HttpRequest, token: str) -> HttpResponse:
    """One page of the last dry run's problems (htmx swaps it into the report)."""
    upload = uploads.upload_get(actor=acting_user(request), token=token)
    dry = review.upload_last_dry_run(upload) or review.DryRun("ok")
    context = {
        "problems": _problems_page(request, dry.problems),
        "problems_url": reverse("web:import-problems", args=[upload.token]),
        "upload": upload,
        "hx": True,
    }
    template = "web/imports/_problems.html" if _is_htmx(request) else "web/imports/problems.html"
    return render(request, template, context)


@importer_required
def import_mapping_yaml(request: HttpRequest, token: str) -> HttpResponse:
    """The mapping in force (the automatic one with the user's changes) as a YAML file to keep
    and pass to `loudou import … --mapping FILE`."""
    upload = uploads.upload_get(actor=acting_user(request), token=token)
    dry = review.upload_last_dry_run(upload)
    if dry is None or not dry.report.get("mapping_yaml"):
        raise NotFound(_("No mapping yet: the file could not be checked."))
    response = HttpResponse(dry.report["mapping_yaml"], content_type="text/yaml; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, "loudou-mapping.yaml")
    return response


@importer_required
@require_post
def import_discard(request: HttpRequest, token: str) -> HttpResponse:
    """Forget an upload without importing it."""
    upload = uploads.upload_get(actor=acting_user(request), token=token)
    uploads.upload_delete(upload.token)
    return redirect("web:import")


# --- step 4: confirm, progress, report ------------------------------------------------------


@importer_required
@require_post
def import_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """Import the upload for real, in the background, and follow it on its run's page."""
    actor = acting_user(request)
    upload = uploads.upload_get(actor=actor, token=token)
    playbook = playbook_get(upload.playbook)
    run = runs.import_run_queue(actor=actor, upload=upload, playbook=playbook)
    if run.status == ImportStatus.QUEUED:
        runs.import_run_start(run)
    return redirect("web:import-run", pk=run.pk)


def _run_context(request: HttpRequest, pk: int) -> dict[str, Any]:
    runs.import_runs_interrupt_stale()
    run = runs.import_run_get(acting_user(request), pk)
    report = run.report or {}
    stage_names = {s.key: s for s in run.playbook.ordered_stages()}
    retry = run.status != ImportStatus.DONE and uploads.upload_exists(request.user, run.upload)
    return {
        "run": run,
        "report": report,
        "progress": runs.run_progress(run),
        "format_label": FORMATS.get(run.format, (run.format,))[0],
        "by_stage": [
            (stage_names.get(key), key, count)
            for key, count in (report.get("by_stage") or {}).items()
        ],
        "problems": _problems_page(request, report.get("problems") or []),
        "problems_url": reverse("web:import-run", args=[run.pk]),
        "retry": retry,
        "source": report.get("source", ""),
    }


@importer_required
def import_run(request: HttpRequest, pk: int) -> HttpResponse:
    """One import: its progress while it runs, then its report (or why it was refused)."""
    return render(request, "web/imports/run.html", _run_context(request, pk))


@importer_required
def import_run_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The run's progress (polled every second by htmx), then, once it ended, its outcome."""
    return render(request, "web/imports/_run_body.html", _run_context(request, pk))


urlpatterns = [
    path("import/", import_start, name="import"),
    path("import/template.xlsx", import_template, name="import-template"),
    path("import/runs/<int:pk>/", import_run, name="import-run"),
    path("import/runs/<int:pk>/progress/", import_run_progress, name="import-run-progress"),
    path("import/<str:token>/", import_review, name="import-review"),
    path("import/<str:token>/check/", import_check, name="import-check"),
    path("import/<str:token>/problems/", import_problems, name="import-problems"),
    path("import/<str:token>/mapping.yaml", import_mapping_yaml, name="import-mapping"),
    path("import/<str:token>/confirm/", import_confirm, name="import-confirm"),
    path("import/<str:token>/discard/", import_discard, name="import-discard"),
]
