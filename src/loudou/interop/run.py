"""One import from end to end, as the command line and the web page run it: read the files,
parse them in the chosen format, check and write (or refuse) through `import_parsed`."""

from pathlib import Path
from typing import Any

from django.utils.translation import gettext as _

from loudou.core.errors import ValidationFailed
from loudou.interop.formats import READERS, DealOptions
from loudou.interop.importer import ImportRefused, import_parsed
from loudou.interop.services import Progress
from loudou.interop.stagemap import read_mapping_file
from loudou.interop.tables import Sheet, read_file
from loudou.org.models import User
from loudou.playbooks.models import Playbook
from loudou.playbooks.selectors import playbook_get


def import_sheets(
    fmt: str,
    sheets: list[Sheet],
    *,
    actor: User,
    playbook: Playbook | None = None,
    mapping: dict[str, Any] | None = None,
    dayfirst: bool = False,
    default_owner: User | None = None,
    default_currency: str = "CNY",
    dry_run: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Import sheets already read (the web page reads the upload) in format `fmt`."""
    if fmt not in READERS:
        raise ValidationFailed(
            _("Unknown format “%(f)s”; one of: %(all)s.") % {"f": fmt, "all": ", ".join(READERS)}
        )
    mapping = mapping or {}
    if playbook is None:
        playbook = playbook_get(mapping["playbook"]) if mapping.get("playbook") else playbook_get()
    parsed = READERS[fmt](sheets, DealOptions(dayfirst=dayfirst), mapping.get("columns"))
    read = {
        "files": sorted({s.name for s in sheets}),
        "encodings": sorted({s.encoding for s in sheets if s.encoding}),
    }
    try:
        report = import_parsed(
            parsed,
            actor=actor,
            playbook=playbook,
            mapping_file=mapping,
            default_owner=default_owner,
            default_currency=default_currency,
            dry_run=dry_run,
            progress=progress,
        )
    except ImportRefused as refused:
        refused.details.setdefault("report", {}).update(read)
        raise
    return {**report, **read}


def import_paths(
    fmt: str,
    paths: list[Path | str],
    *,
    encoding: str | None = None,
    mapping_path: Path | str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Import files (or directories of them) from disk."""
    sheets = [sheet for path in paths for sheet in read_file(path, encoding=encoding)]
    mapping = read_mapping_file(mapping_path) if mapping_path else None
    return import_sheets(fmt, sheets, mapping=mapping, **options)
