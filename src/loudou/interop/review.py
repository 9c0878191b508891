"""What the Import page's review step shows for an upload: the importer's dry run (kept beside the
upload for the problem pages and the mapping download), the deal sheets' columns matched to
loudou's fields, and the owner names of the file matched to users. The importer is the command
line's (`loudou.interop.run.import_sheets`), run here without saving anything."""

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from loudou.core.errors import LoudouError
from loudou.interop.formats import hubspot, native, odoo, pipedrive, salesforce
from loudou.interop.formats.common import Aliases, match_columns
from loudou.interop.importer import ImportRefused, owner_index
from loudou.interop.run import import_sheets
from loudou.interop.tables import Sheet, as_text
from loudou.interop.uploads import Upload, write_json
from loudou.org.models import User
from loudou.playbooks.models import Playbook

logger = logging.getLogger(__name__)


@dataclass
class DryRun:
    """What the importer would do with an upload: `outcome` ok, refused (problems in the file)
    or error (nothing could be checked: a permission, an unreadable file)."""

    outcome: str
    report: dict[str, Any] = field(default_factory=dict)
    problems: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""


def importer_options(upload: Upload, actor: User, playbook: Playbook) -> dict[str, Any]:
    return {
        "actor": actor,
        "playbook": playbook,
        "mapping": {**upload.mapping, "playbook": playbook.key},
        "dayfirst": bool(upload.options.get("dayfirst")),
        "default_owner": upload.default_owner(),
        "default_currency": upload.options.get("currency") or "CNY",
    }


def refusal_details(refused: ImportRefused) -> tuple[dict[str, Any], list[dict[str, Any]]]:
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
            upload.format,
            upload.sheets(),
            dry_run=True,
            **importer_options(upload, actor, playbook),
        )
        result = DryRun("ok", report=report)
    except ImportRefused as refused:
        report, problems = refusal_details(refused)
        result = DryRun("refused", report=report, problems=problems, error=refused.message)
    except LoudouError as error:
        result = DryRun("error", error=error.message)
    except Exception:  # a file the importer cannot handle must be a message, not a crash
        logger.exception("dry run of upload %s failed", upload.token)
        result = DryRun("error", error=_("The file could not be checked: an unexpected error."))
    write_json(upload.folder / "dry-run.json", result.__dict__)
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
