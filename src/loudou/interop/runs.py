"""The Import page's confirmed imports: queued, run in the background with their progress, and
recorded as an `ImportRun` (done, refused, failed, or interrupted when the server stopped).

Every write to `ImportRun` goes through the services here. The confirmed import runs through
`RUNNER` (a thread by default, with its own database connection): the tests replace it with a
synchronous call, since their database transaction cannot be shared with another connection.
The uploads it reads are `loudou.interop.uploads`'; the options it runs with, the ones the dry run
used (`loudou.interop.review`)."""

import contextlib
import datetime as dt
import json
import logging
import threading
import time
import zoneinfo
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.db.models import QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from loudou.core.errors import LoudouError, NotFound, ValidationFailed
from loudou.interop.importer import ImportRefused
from loudou.interop.models import ImportRun, ImportStatus
from loudou.interop.review import importer_options, refusal_details
from loudou.interop.run import import_sheets
from loudou.interop.uploads import Upload, upload_delete, upload_read, uploads_root, write_json
from loudou.org.models import AccessLevel, User
from loudou.playbooks.models import Playbook

logger = logging.getLogger(__name__)

# A queued or running import whose progress has not moved for this long died with its process
# (a server restart): its transaction was rolled back, so it is marked failed.
STALE_AFTER = dt.timedelta(minutes=15)
LIVE = (ImportStatus.QUEUED, ImportStatus.RUNNING, ImportStatus.DONE)
MAX_PROBLEMS_KEPT = 5000


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
                write_json(self.path, data)


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
        upload = upload_read(run.upload)
        try:
            if upload is None:
                raise ValidationFailed(_("The uploaded file is gone: upload it again."))
            report = import_sheets(
                upload.format,
                upload.sheets(),
                dry_run=False,
                progress=progress,
                **importer_options(upload, run.actor, run.playbook),
            )
        except ImportRefused as refused:
            report, problems = refusal_details(refused)
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
