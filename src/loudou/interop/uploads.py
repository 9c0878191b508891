"""The Import page's uploads: the files a user brings, checked by their content (a CSV or an
XLSX, not too large, not a decompression bomb) and kept between the page's steps with the options
and the mapping the user chooses, under MEDIA_ROOT/imports/<token>/ (one folder per upload, for
its owner only, removed after its import or a day later).

Who may import, and whose deals: `can_import`, `importable_owners`. The dry run and the mapping
the page shows are in `loudou.interop.review`; the confirmed import in `loudou.interop.runs`."""

import datetime as dt
import json
import os
import re
import secrets
import shutil
import threading
import zipfile
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from loudou.core.errors import NotFound, ValidationFailed
from loudou.core.money import validate_currency
from loudou.interop.formats import READERS
from loudou.interop.models import ImportRun, ImportStatus
from loudou.interop.tables import XLSX_MAGIC, Sheet, read_bytes
from loudou.org.access import managed_branch_ids
from loudou.org.models import AccessLevel, User
from loudou.playbooks.models import Playbook

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
# An XLSX is a zip: what it inflates to is what the import reads (at every step), so it is
# limited too. Real exports inflate about 5 to 8 times; a decompression bomb, a thousand.
MAX_INFLATED_BYTES = 8 * MAX_UPLOAD_BYTES
UPLOAD_LIFETIME = dt.timedelta(days=1)
ENCODINGS = ("gbk", "gb18030", "utf-8")
SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx", ".xls")
TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the old binary .xls


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
        write_json(self.folder / "upload.json", data)


def write_json(path: Path, data: Any) -> None:
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


def upload_read(token: str) -> Upload | None:
    if not TOKEN.match(token or ""):
        return None
    try:
        return Upload(**json.loads((uploads_root() / token / "upload.json").read_text("utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def upload_get(*, actor: User, token: str) -> Upload:
    """The upload `token` of `actor`; NotFound for another user's (even an administrator's)."""
    upload = upload_read(token)
    if upload is None or upload.user_id != actor.pk:
        raise NotFound(_("This upload does not exist (any more): upload the file again."))
    return upload


def upload_exists(actor: Any, token: str) -> bool:
    """True while `actor`'s upload `token` is kept (to offer going back to its mapping)."""
    upload = upload_read(token)
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
        upload = upload_read(folder.name)
        created = dt.datetime.fromisoformat(upload.created) if upload else None
        if created is None:  # not an upload (or a broken one): judged by its age on disk
            created = dt.datetime.fromtimestamp(folder.stat().st_mtime, dt.UTC)
        if created < cutoff and folder.name not in reading:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed
