"""The Import page's step 4 and the runs it starts: confirm imports and reports, the same file
twice creates nothing twice, the progress polled until the run ends, an unexpected error or a
dead process fails the run with nothing written, old uploads removed, the record of past imports
and its query count, and the background thread with its own connection."""

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from loudou.interop import runs
from loudou.interop.models import ImportRun
from loudou.interop.uploads import uploads_purge, uploads_root
from loudou.pipeline.models import Opportunity
from tests.web.imports.uploads import HISTORY, NAMES, counts, csv_file, token_of, upload, uploads

# --- step 4: confirm, progress, report ------------------------------------------------------------


def test_confirm_imports_reports_and_the_same_file_twice_creates_nothing_twice(
    client_for: Any, org: Any, settings: Any
) -> None:
    manager = client_for("manager")
    token = token_of(upload(manager, csv_file(), csv_file(HISTORY, "history.csv", "utf-8")))
    response = manager.post(reverse("web:import-confirm", args=[token]))
    run = ImportRun.objects.get()
    assert response["Location"] == reverse("web:import-run", args=[run.pk])
    assert (run.status, run.actor, run.format, run.files) == (
        "done",
        org["manager"],
        "salesforce",
        ["opps.csv", "history.csv"],
    )
    assert (run.report["new"], run.report["created"]["accounts"]) == (4, 4)
    assert sorted(Opportunity.objects.values_list("name", flat=True)) == sorted(NAMES)
    assert uploads(settings) == []  # the upload is deleted once imported
    page = manager.get(reverse("web:import-run", args=[run.pk])).content.decode()
    assert 'data-status="done"' in page and 'data-count="new">4<' in page
    assert "hx-trigger" not in page  # finished: nothing polls
    assert "/board/?playbook=project-funnel&amp;source=salesforce" in page
    # A second click on the same upload imports nothing again.
    again = manager.post(reverse("web:import-confirm", args=[token]))
    assert again.status_code == 404 and ImportRun.objects.count() == 1

    token = token_of(upload(manager, csv_file(), csv_file(HISTORY, "history.csv", "utf-8")))
    page = manager.get(reverse("web:import-review", args=[token])).content.decode()
    assert 'data-count="new">0<' in page and 'data-count="already_imported">4<' in page
    before = counts()
    manager.post(reverse("web:import-confirm", args=[token]))
    second = ImportRun.objects.order_by("-id").first()
    assert (second.status, second.report["new"], second.report["already_imported"]) == (
        "done",
        0,
        4,
    )
    assert counts()[:4] == before[:4]


def test_a_second_confirm_of_a_running_upload_finds_its_run(
    client_for: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(runs, "RUNNER", lambda job: None)  # queued, never started
    manager = client_for("manager")
    token = token_of(upload(manager))
    first = manager.post(reverse("web:import-confirm", args=[token]))
    second = manager.post(reverse("web:import-confirm", args=[token]))
    assert first["Location"] == second["Location"]
    assert ImportRun.objects.get().status == "queued"


def test_the_progress_is_polled_until_the_run_ends(client_for: Any, monkeypatch: Any) -> None:
    jobs: list[Any] = []
    monkeypatch.setattr(runs, "RUNNER", jobs.append)
    manager = client_for("manager")
    token = token_of(upload(manager))
    manager.post(reverse("web:import-confirm", args=[token]))
    run = ImportRun.objects.get()
    url = reverse("web:import-run-progress", args=[run.pk])
    queued = manager.get(url).content.decode()
    assert f'hx-get="{url}" hx-trigger="every 1s"' in queued and "Waiting to start" in queued
    # The importer's progress as the page reads it while it runs.
    ImportRun.objects.filter(pk=run.pk).update(status="running")
    progress = runs.RunProgress(Path(uploads_root() / token / "progress.json"))
    progress.start("Writing", 40)
    progress.advance(10)
    progress._write(force=True)
    running = manager.get(url).content.decode()
    assert 'value="25"' in running and "Writing: 10 / 40 (25%)" in running
    ImportRun.objects.filter(pk=run.pk).update(status="queued")
    jobs[0]()
    done = manager.get(url).content.decode()
    assert 'data-status="done"' in done and "hx-trigger" not in done


def test_an_unexpected_error_fails_the_run_with_a_message_and_writes_nothing(
    client_for: Any, monkeypatch: Any
) -> None:
    from loudou.interop import writer

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    # After the deals are inserted, inside the importer's transaction.
    monkeypatch.setattr(writer, "sync_sequences", broken)
    manager = client_for("manager")
    token = token_of(upload(manager))
    page = manager.get(reverse("web:import-review", args=[token])).content.decode()
    assert "The file could not be checked: an unexpected error." in page
    before = counts()
    manager.post(reverse("web:import-confirm", args=[token]))
    run = ImportRun.objects.get()
    assert run.status == "failed"
    assert counts()[:4] == before[:4]
    shown = manager.get(reverse("web:import-run", args=[run.pk])).content.decode()
    assert "stopped on an unexpected error, and nothing was imported" in shown
    assert "disk on fire" not in shown and "Traceback" not in shown


def test_an_import_whose_process_died_is_marked_failed(client_for: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(runs, "RUNNER", lambda job: None)
    manager = client_for("manager")
    manager.post(reverse("web:import-confirm", args=[token_of(upload(manager))]))
    run = ImportRun.objects.get()
    assert runs.import_runs_interrupt_stale() == 0
    later = timezone.now() + runs.STALE_AFTER + dt.timedelta(minutes=1)
    assert runs.import_runs_interrupt_stale(later) == 1
    run.refresh_from_db()
    assert run.status == "failed" and "interrupted" in run.error


def test_uploads_older_than_a_day_are_removed(client_for: Any, settings: Any) -> None:
    token = token_of(upload(client_for("manager")))
    assert uploads_purge() == 0 and uploads(settings) == [token]
    assert uploads_purge(timezone.now() + dt.timedelta(days=1, minutes=1)) == 1
    assert uploads(settings) == []


def test_past_imports_own_for_managers_all_for_admins(client_for: Any, org: Any) -> None:
    for name in ("manager", "north_manager"):
        client = client_for(name)
        client.post(reverse("web:import-confirm", args=[token_of(upload(client))]))
    mine, theirs = (ImportRun.objects.get(actor=org[n]) for n in ("manager", "north_manager"))
    page = client_for("manager").get(reverse("web:import")).content.decode()
    assert reverse("web:import-run", args=[mine.pk]) in page
    assert reverse("web:import-run", args=[theirs.pk]) not in page
    assert client_for("manager").get(reverse("web:import-run", args=[theirs.pk])).status_code == 404
    admin = client_for("admin").get(reverse("web:import")).content.decode()
    assert reverse("web:import-run", args=[mine.pk]) in admin
    assert reverse("web:import-run", args=[theirs.pk]) in admin
    assert client_for("admin").get(reverse("web:import-run", args=[theirs.pk])).status_code == 200


def test_the_start_page_query_count_does_not_grow_with_past_imports(
    client_for: Any, org: Any, playbook: Any, django_assert_max_num_queries: Any
) -> None:
    client = client_for("admin")

    def add(n: int) -> None:
        for _i in range(n):
            ImportRun.objects.create(
                actor=org["manager"],
                created_at=timezone.now(),
                format="odoo",
                playbook=playbook,
                status="done",
                report={"new": 3, "updated": 1},
            )

    add(2)
    with django_assert_max_num_queries(14):
        assert client.get(reverse("web:import")).status_code == 200
    add(15)
    with django_assert_max_num_queries(14):
        assert client.get(reverse("web:import")).status_code == 200


# --- the background thread ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_confirmed_import_runs_in_a_thread_with_its_own_connection(
    client_for: Any, monkeypatch: Any
) -> None:
    import threading

    monkeypatch.setattr(runs, "RUNNER", runs.run_in_thread)
    started: list[threading.Thread] = []
    original = threading.Thread.start

    def start(self: threading.Thread) -> None:
        started.append(self)
        original(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    manager = client_for("manager")
    token = token_of(upload(manager))
    manager.post(reverse("web:import-confirm", args=[token]))
    assert [t.name for t in started] == ["loudou-import"]
    started[0].join(timeout=60)
    run = ImportRun.objects.get()
    assert (run.status, run.report["new"], run.total) == ("done", 4, 4)
    assert sorted(Opportunity.objects.values_list("name", flat=True)) == sorted(NAMES)
