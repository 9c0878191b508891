"""The web page's imports: an upload kept between the page's steps, its dry run, and the confirmed
import run in the background with its progress, recorded as an `ImportRun`.

The importer is the command line's (`loudou.interop.run.import_sheets`): the page only keeps the
uploaded bytes (under MEDIA_ROOT/imports/<token>/, one folder per upload, for its owner only),
the options and the mapping the user edits, and runs it twice, dry first.

Every write to `ImportRun` goes through the services here. The confirmed import runs through
`RUNNER` (a thread by default, with its own database connection): the tests replace it with a
synchronous call, since their database transaction cannot be shared with another connection."""

import contextlib
import datetime as dt
import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
import zipfile
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from io import BytesIO
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connections, transaction
from django.db.models import QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from loudou.core.errors import LoudouError, NotFound, ValidationFailed
from loudou.core.money import validate_currency
from loudou.interop.formats import READERS, hubspot, native, odoo, pipedrive, salesforce
from loudou.interop.formats.common import Aliases, match_columns
from loudou.interop.importer import ImportRefused, owner_index
from loudou.interop.models import ImportRun, ImportStatus
from loudou.interop.run import import_sheets
from loudou.interop.tables import XLSX_MAGIC, Sheet, as_text, read_bytes
from loudou.org.access import managed_branch_ids
from loudou.org.models import AccessLevel, User
from loudou.playbooks.models import Playbook

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
# An XLSX is a zip: what it inflates to is what the import reads (at every step), so it is
# limited too. Real exports inflate about 5 to 8 times; a decompression bomb, a thousand.
MAX_INFLATED_BYTES = 8 * MAX_UPLOAD_BYTES
UPLOAD_LIFETIME = dt.timedelta(days=1)
# A queued or running import whose progress has not moved for this long died with its process
# (a server restart): its transaction was rolled back, so it is marked failed.
STALE_AFTER = dt.timedelta(minutes=15)
ENCODINGS = ("gbk", "gb18030", "utf-8")
SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx", ".xls")
TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the old binary .xls
LIVE = (ImportStatus.QUEUED, ImportStatus.RUNNING, ImportStatus.DONE)
MAX_PROBLEMS_KEPT = 5000


def can_import(user: Any) -> bool:
    """Administrators and managers import; sellers (and executives, who read) do not."""
    return bool(user.is_authenticated) and user.level in (AccessLevel.MANAGER, AccessLevel.ADMIN)


def importable_owners(user: User) -> QuerySet[User]:
    """The active users whose deals `user` may import: everyone with a branch for an
    administrator, the people of the branches a manager manages."""
    users = User.objects.filter(is_active=True, branch__isnull=False).select_related("branch")
    managed = managed_branch_ids(user)
    if managed is not None:
        users = users.filter(branch_id__in=managed)
    return users.order_by("username")


# --- uploads ------------------------------------------------------------------------------


def uploads_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "imports"


@dataclass
class Upload:
    """An uploaded file (and, for Salesforce, its OpportunityHistory file) waiting to be
    imported, with the options and the mapping the user chose on the page."""

    token: str
    user_id: int
    created: str
    format: str
    playbook: str
    files: list[dict[str, Any]]
    options: dict[str, Any]
    mapping: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return uploads_root() / self.token

    @property
    def file_names(self) -> list[str]:
        return [f["name"] for f in self.files]

    def sheets(self) -> list[Sheet]:
        """The sheets of the uploaded files, read again from the bytes kept (with the encoding
        chosen now, which the user may have changed since the upload)."""
        encoding = self.options.get("encoding") or None
        return [
            sheet
            for f in self.files
            for sheet in read_bytes(
                (self.folder / f["stored"]).read_bytes(), name=f["name"], encoding=encoding
            )
        ]

    def default_owner(self) -> User | None:
        pk = self.options.get("default_owner")
        return User.objects.filter(pk=pk, is_active=True).first() if pk else None

    def save(self) -> None:
        data = {k: v for k, v in self.__dict__.items()}
        _write_json(self.folder / "upload.json", data)


def _write_json(path: Path, data: Any) -> None:
    # Written aside then renamed: a reader (another worker process) never sees half a file.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    temporary.write_text(json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False), "utf-8")
    os.replace(temporary, path)


def upload_check(name: str, data: bytes) -> None:
    """Refuse what is no CSV or XLSX file, by its content (a renamed PDF, an old .xls, a web page
    saved as .xls, a Word document), its name and its size."""
    if Path(name).suffix.lower() not in SUFFIXES:
        raise ValidationFailed(
            _("%(f)s is not a CSV or XLSX file.") % {"f": name}, details={"file": _("invalid")}
        )
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValidationFailed(
            _("%(f)s is larger than %(n)s MB: split it, or import it with `loudou import`.")
            % {"f": name, "n": MAX_UPLOAD_BYTES // (1024 * 1024)},
            details={"file": _("too large")},
        )
    if not data.strip():
        raise ValidationFailed(_("%(f)s is empty.") % {"f": name}, details={"file": _("empty")})
    if data.startswith(XLSX_MAGIC):
        try:
            book = zipfile.ZipFile(BytesIO(data))
            book.getinfo("xl/workbook.xml")
        except (zipfile.BadZipFile, KeyError):
            raise ValidationFailed(
                _("%(f)s is not an Excel workbook (.xlsx).") % {"f": name},
                details={"file": _("invalid")},
            ) from None
        if sum(member.file_size for member in book.infolist()) > MAX_INFLATED_BYTES:
            raise ValidationFailed(
                _("%(f)s unpacks to more than %(n)s MB: split it, or import it with "
                  "`loudou import`.") % {"f": name, "n": MAX_INFLATED_BYTES // (1024 * 1024)},
                details={"file": _("too large")},
            )  # fmt: skip
        return
    if data.startswith(OLE_MAGIC):
        raise ValidationFailed(
            _("%(f)s is in the old Excel format (.xls): open it in Excel and save it as .xlsx or "
              "CSV.") % {"f": name},
            details={"file": _("invalid")},
        )  # fmt: skip
    head = data[:65536]
    if head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<":
        raise ValidationFailed(
            _("%(f)s is a web page (HTML), not a spreadsheet: export the report as CSV or XLSX.")
            % {"f": name},
            details={"file": _("invalid")},
        )
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ValidationFailed(
            _("%(f)s is not a CSV or XLSX file.") % {"f": name}, details={"file": _("invalid")}
        )


def upload_create(
    *,
    actor: User,
    fmt: str,
    playbook: Playbook,
    files: list[tuple[str, bytes]],
    encoding: str = "",
    dayfirst: bool = False,
    default_owner: User | None = None,
    currency: str = "CNY",
) -> Upload:
    """Keep uploaded files for `actor`'s import after checking that they can be read; nothing is
    kept when they cannot. `files` is (name, bytes): the file, then an optional history file."""
    if fmt not in READERS:
        raise ValidationFailed(_("Choose a format."), details={"format": _("required")})
    if encoding and encoding not in ENCODINGS:
        raise ValidationFailed(_("Unknown encoding “%(e)s”.") % {"e": encoding})
    currency = validate_currency(currency)
    if default_owner is not None and not importable_owners(actor).filter(pk=default_owner.pk):
        raise ValidationFailed(
            _("The default owner must be someone whose deals you may import."),
            details={"default_owner": _("invalid")},
        )
    for name, data in files:
        upload_check(name, data)
        read_bytes(data, name=name, encoding=encoding or None)  # refuses what cannot be read
    uploads_purge()
    token = secrets.token_urlsafe(24)
    upload = Upload(
        token=token,
        user_id=actor.pk,
        created=timezone.now().isoformat(),
        format=fmt,
        playbook=playbook.key,
        files=[
            {"name": Path(name).name[:200], "stored": f"file-{i}", "size": len(data)}
            for i, (name, _data) in enumerate(files)
        ],
        options={
            "encoding": encoding,
            "dayfirst": dayfirst,
            "default_owner": default_owner.pk if default_owner else None,
            "currency": currency,
        },
        mapping={"stages": {}, "owners": {}, "columns": {}},
    )
    upload.folder.mkdir(parents=True, mode=0o700)
    for stored, (_name, data) in zip(upload.files, files, strict=True):
        (upload.folder / stored["stored"]).write_bytes(data)
    upload.save()
    return upload


def _upload_read(token: str) -> Upload | None:
    if not TOKEN.match(token or ""):
        return None
    try:
        return Upload(**json.loads((uploads_root() / token / "upload.json").read_text("utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def upload_get(*, actor: User, token: str) -> Upload:
    """The upload `token` of `actor`; NotFound for another user's (even an administrator's)."""
    upload = _upload_read(token)
    if upload is None or upload.user_id != actor.pk:
        raise NotFound(_("This upload does not exist (any more): upload the file again."))
    return upload


def upload_exists(actor: Any, token: str) -> bool:
    """True while `actor`'s upload `token` is kept (to offer going back to its mapping)."""
    upload = _upload_read(token)
    return upload is not None and upload.user_id == actor.pk


def upload_update(
    upload: Upload, *, mapping: dict[str, dict[str, str]], options: dict[str, Any], actor: User
) -> None:
    """Keep the mapping and options the user chose for the next dry run and the import."""
    if options.get("encoding") and options["encoding"] not in ENCODINGS:
        raise ValidationFailed(_("Unknown encoding “%(e)s”.") % {"e": options["encoding"]})
    options["currency"] = validate_currency(options.get("currency") or "")
    owner = options.get("default_owner")
    if owner and not importable_owners(actor).filter(pk=owner):
        raise ValidationFailed(_("The default owner must be someone whose deals you may import."))
    upload.mapping = {k: dict(mapping.get(k) or {}) for k in ("stages", "owners", "columns")}
    upload.options = {**upload.options, **options}
    upload.save()


def upload_delete(token: str) -> None:
    """Remove an upload's files (after its import, or when the user discards it)."""
    if TOKEN.match(token or ""):
        shutil.rmtree(uploads_root() / token, ignore_errors=True)


def uploads_purge(now: dt.datetime | None = None) -> int:
    """Remove the uploads older than a day that no import is reading; the number removed."""
    root = uploads_root()
    if not root.is_dir():
        return 0
    cutoff = (now or timezone.now()) - UPLOAD_LIFETIME
    reading = set(
        ImportRun.objects.filter(
            status__in=(ImportStatus.QUEUED, ImportStatus.RUNNING)
        ).values_list("upload", flat=True)
    )
    removed = 0
    for folder in root.iterdir():
        upload = _upload_read(folder.name)
        created = dt.datetime.fromisoformat(upload.created) if upload else None
        if created is None:  # not an upload (or a broken one): judged by its age on disk
            created = dt.datetime.fromtimestamp(folder.stat().st_mtime, dt.UTC)
        if created < cutoff and folder.name not in reading:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


# --- the dry run and the mapping the page shows ---------------------------------------------


@dataclass
class DryRun:
    """What the importer would do with an upload: `outcome` ok, refused (problems in the file)
    or error (nothing could be checked: a permission, an unreadable file)."""

    outcome: str
    report: dict[str, Any] = field(default_factory=dict)
    problems: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""


def _options(upload: Upload, actor: User, playbook: Playbook) -> dict[str, Any]:
    return {
        "actor": actor,
        "playbook": playbook,
        "mapping": {**upload.mapping, "playbook": playbook.key},
        "dayfirst": bool(upload.options.get("dayfirst")),
        "default_owner": upload.default_owner(),
        "default_currency": upload.options.get("currency") or "CNY",
    }


def _refusal(refused: ImportRefused) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    report = dict(refused.details.get("report") or {})
    problems = report.get("problems") or [
        {"sheet": "", "row": "", "column": "", "value": "", "reason": text}
        for text in refused.details.get("problems") or []
    ]
    return report, problems


def upload_dry_run(upload: Upload, *, actor: User, playbook: Playbook) -> DryRun:
    """Run the import without saving anything and keep the result beside the upload (the
    problem pages and the mapping download read it)."""
    try:
        report = import_sheets(
            upload.format, upload.sheets(), dry_run=True, **_options(upload, actor, playbook)
        )
        result = DryRun("ok", report=report)
    except ImportRefused as refused:
        report, problems = _refusal(refused)
        result = DryRun("refused", report=report, problems=problems, error=refused.message)
    except LoudouError as error:
        result = DryRun("error", error=error.message)
    except Exception:  # a file the importer cannot handle must be a message, not a crash
        logger.exception("dry run of upload %s failed", upload.token)
        result = DryRun("error", error=_("The file could not be checked: an unexpected error."))
    _write_json(upload.folder / "dry-run.json", result.__dict__)
    return result


def upload_last_dry_run(upload: Upload) -> DryRun | None:
    """The result of the upload's latest dry run, if any."""
    try:
        data = json.loads((upload.folder / "dry-run.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return DryRun(**data)


FORMAT_MODULES: dict[str, Any] = {
    "native": native,
    "salesforce": salesforce,
    "hubspot": hubspot,
    "pipedrive": pipedrive,
    "odoo": odoo,
}


def deal_columns(fmt: str) -> Aliases:
    """Our deal fields → the headers each format's reader looks for."""
    if fmt == "native":
        return {key: (en, zh, key) for key, (en, zh, _ex, _h) in native.DEAL_COLUMNS.items()}
    deals: Aliases = FORMAT_MODULES[fmt].DEALS
    return deals


def required_fields(fmt: str) -> tuple[str, ...]:
    """The deal fields a format's reader refuses a sheet without."""
    return ("name", "account") if fmt in ("salesforce", "hubspot") else ("name", "account", "stage")


def deal_sheets(fmt: str, sheets: list[Sheet]) -> list[Sheet]:
    """The sheets the reader takes deals from (not a history, accounts or README sheet)."""
    if fmt == "salesforce":
        return [s for s in sheets if not salesforce.is_history(s)]
    if fmt == "native":
        kept = [s for s in sheets if s.name.strip().lower() not in ("readme", "说明")]
        return [s for s in kept if native.sheet_kind(s) == "opportunities"]
    return sheets


def column_choices(
    fmt: str, sheets: list[Sheet], columns: dict[str, str]
) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """The deal sheets' headers, the automatic match (field → header) and the match in force
    with the user's choices."""
    headers: list[str] = []
    for sheet in deal_sheets(fmt, sheets):
        headers.extend(h for h in sheet.headers if h and h not in headers)
    aliases = deal_columns(fmt)
    return headers, match_columns(headers, aliases), match_columns(headers, aliases, columns)


def owner_names(fmt: str, sheets: list[Sheet], columns: dict[str, str]) -> list[str]:
    """The owner names the file's deals (and a native file's accounts) give, in order."""
    found: dict[str, None] = {}
    sources: list[tuple[Sheet, Aliases, dict[str, str]]] = [
        (s, deal_columns(fmt), columns) for s in deal_sheets(fmt, sheets)
    ]
    if fmt == "native":
        accounts: Aliases = {
            k: (en, zh, k) for k, (en, zh, _e, _h) in native.ACCOUNT_COLUMNS.items()
        }
        sources += [(s, accounts, {}) for s in sheets if native.sheet_kind(s) == "accounts"]
    for sheet, aliases, overrides in sources:
        header = match_columns(sheet.headers, aliases, overrides).get("owner")
        if header is None:
            continue
        for _row, cells in sheet.records():
            found.setdefault(as_text(cells.get(header)), None)
    return sorted(n for n in found if n)


def owner_matches(names: list[str]) -> dict[str, User | None]:
    """The user the importer matches each owner name to without a mapping: by username, e-mail,
    display name or full name, case ignored (`importer.owner_index`)."""
    index = owner_index(list(User.objects.filter(is_active=True).select_related("branch")))
    return {name: index.get(name.strip().lower()) for name in names}


# --- import runs ----------------------------------------------------------------------------


def import_runs_visible_to(user: User) -> QuerySet[ImportRun]:
    """The imports a user may see: their own; an administrator sees every one."""
    runs = ImportRun.objects.select_related("actor", "playbook")
    if user.level != AccessLevel.ADMIN:
        runs = runs.filter(actor=user)
    return runs.order_by("-created_at", "-id")


def import_run_get(user: User, pk: int) -> ImportRun:
    """One import the user may see, or NotFound."""
    run = import_runs_visible_to(user).filter(pk=pk).first()
    if run is None:
        raise NotFound(_("No such import."))
    return run


def import_run_queue(*, actor: User, upload: Upload, playbook: Playbook) -> ImportRun:
    """Record the confirmed import of `upload`, queued. An upload already queued, running or
    imported gives its run back: a second click never imports the file twice."""
    live = ImportRun.objects.filter(upload=upload.token, status__in=LIVE)
    if existing := live.first():
        return existing
    try:
        with transaction.atomic():
            return ImportRun.objects.create(
                actor=actor,
                created_at=timezone.now(),
                format=upload.format,
                playbook=playbook,
                files=upload.file_names,
                options={**upload.options, "mapping": upload.mapping},
                upload=upload.token,
                status=ImportStatus.QUEUED,
            )
    except IntegrityError:  # the same upload confirmed at the same moment in another request
        return live.get()


def run_in_thread(job: Callable[[], None]) -> None:
    """Run `job` in a background thread, which has its own database connection (closed at the
    end, or it would stay open until the process ends)."""

    def target() -> None:
        try:
            job()
        finally:
            connections.close_all()

    threading.Thread(target=target, name="loudou-import", daemon=True).start()


# What runs a confirmed import; tests put a synchronous call here (see the module docstring).
RUNNER: Callable[[Callable[[], None]], None] = run_in_thread


def import_run_start(run: ImportRun) -> None:
    """Hand a queued run to the runner, in the current language and time zone (the report's
    texts and the times the file leaves without a zone are read in them, as in the dry run)."""
    job = partial(
        import_run_execute,
        run.pk,
        language=translation.get_language() or settings.LANGUAGE_CODE,
        time_zone=timezone.get_current_timezone_name(),
    )
    RUNNER(job)


class RunProgress:
    """The importer's progress (phase, done, total), written to a small file that every server
    process can read: the import's own transaction hides its database writes until the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.phase, self.done, self.total = "", 0, 0
        self._written = 0.0

    def start(self, phase: str, total: int) -> None:
        if not total and self.total:
            return  # a phase with nothing to do (no deal to update): the last one's count stays
        self.phase, self.done, self.total = phase, 0, total
        self._write(force=True)

    def advance(self, steps: int = 1) -> None:
        self.done += steps
        self._write()

    def _write(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._written >= 0.3:
            self._written = now
            data = {"phase": self.phase, "done": self.done, "total": self.total}
            if self.path.parent.is_dir():
                _write_json(self.path, data)


def import_run_execute(run_id: int, *, language: str, time_zone: str) -> None:
    """Import a queued run's upload for real, then record how it ended: done (and the upload
    deleted), refused (the file's problems; nothing written) or failed (an unexpected error;
    nothing written either, the importer being one transaction)."""
    with translation.override(language), timezone.override(zoneinfo.ZoneInfo(time_zone)):
        started = ImportRun.objects.filter(pk=run_id, status=ImportStatus.QUEUED).update(
            status=ImportStatus.RUNNING, started_at=timezone.now()
        )
        if not started:
            return
        run = ImportRun.objects.select_related("actor", "playbook").get(pk=run_id)
        progress = RunProgress(uploads_root() / run.upload / "progress.json")
        upload = _upload_read(run.upload)
        try:
            if upload is None:
                raise ValidationFailed(_("The uploaded file is gone: upload it again."))
            report = import_sheets(
                upload.format,
                upload.sheets(),
                dry_run=False,
                progress=progress,
                **_options(upload, run.actor, run.playbook),
            )
        except ImportRefused as refused:
            report, problems = _refusal(refused)
            report["problems"] = problems[:MAX_PROBLEMS_KEPT]
            report["problems_total"] = len(problems)
            _finish(run, ImportStatus.REFUSED, progress, report=report, error=refused.message)
        except LoudouError as error:
            _finish(run, ImportStatus.REFUSED, progress, error=error.message)
        except Exception:
            logger.exception("import run %s failed", run_id)
            message = _(
                "The import stopped on an unexpected error, and nothing was imported. Try again; "
                "if it fails again, give the administrator this import's number: %(n)s."
            ) % {"n": run_id}
            _finish(run, ImportStatus.FAILED, progress, error=message)
        else:
            _finish(run, ImportStatus.DONE, progress, report=report)
            upload_delete(run.upload)


def _finish(
    run: ImportRun,
    status: str,
    progress: RunProgress,
    *,
    report: dict[str, Any] | None = None,
    error: str = "",
) -> None:
    ImportRun.objects.filter(pk=run.pk).update(
        status=status,
        finished_at=timezone.now(),
        phase=progress.phase[:80],
        done=progress.done,
        total=progress.total,
        report=report or {},
        error=error,
    )


def run_progress(run: ImportRun) -> dict[str, Any]:
    """How far a run is: its phase, done and total, and the percentage done."""
    values: dict[str, Any] = {"phase": run.phase, "done": run.done, "total": run.total}
    if not run.finished and run.upload:
        with contextlib.suppress(OSError, ValueError):
            values.update(json.loads((uploads_root() / run.upload / "progress.json").read_text()))
    total = values["total"] or 0
    values["percent"] = (
        100
        if run.status == ImportStatus.DONE
        else (min(100, round(100 * values["done"] / total)) if total else 0)
    )
    return values


def import_runs_interrupt_stale(now: dt.datetime | None = None) -> int:
    """Mark failed the imports whose process died (no progress for STALE_AFTER): nothing of them
    was written, their transaction having died with them. Returns how many."""
    now = now or timezone.now()
    count = 0
    for run in ImportRun.objects.filter(status__in=(ImportStatus.QUEUED, ImportStatus.RUNNING)):
        beat = run.started_at or run.created_at
        try:
            mtime = (uploads_root() / run.upload / "progress.json").stat().st_mtime
            beat = max(beat, dt.datetime.fromtimestamp(mtime, dt.UTC))
        except OSError:
            pass
        if now - beat > STALE_AFTER:
            count += ImportRun.objects.filter(pk=run.pk, status=run.status).update(
                status=ImportStatus.FAILED,
                finished_at=now,
                error=_(
                    "The import was interrupted (the server stopped while it ran); nothing was "
                    "imported. Run it again."
                ),
            )
    return count
