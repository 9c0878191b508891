"""`loudou backup FILE` / `loudou restore FILE`: a database with deals at several stages backed up,
changed, restored, and compared value for value; every refusal changes nothing."""

import hashlib
import json
import os
import stat
import subprocess
import threading
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import close_old_connections, connection

from loudou.core.backup import (
    FORMAT,
    BackupFailed,
    backup_tables,
    disk_error,
    live_counts,
    manifest_path,
)
from loudou.core.models import AuditEvent
from loudou.org.models import User
from loudou.org.services import user_set_role
from loudou.pipeline import services as ps
from loudou.pipeline.models import Opportunity, OpportunityHistory

POSTGRES = connection.vendor == "postgresql"
both_engines = pytest.mark.django_db(transaction=True)


def state() -> dict[str, Any]:
    """What a restore must bring back exactly: each deal's stage, status, amount and version,
    every history row, the audit log's size and every table's rows."""
    return {
        "deals": list(
            Opportunity.objects.order_by("pk").values_list(
                "pk", "name", "stage__key", "status", "amount", "version"
            )
        ),
        "history": list(
            OpportunityHistory.objects.order_by("pk").values_list(
                "pk", "opportunity_id", "stage__key", "status", "amount", "valid_from"
            )
        ),
        "audit_events": AuditEvent.objects.count(),
        "rows": live_counts(),
    }


@pytest.fixture
def deals(walker: Any, org: dict[str, Any]) -> list[Any]:
    """Four deals: one just found, one at 立项 (project), one in negotiation, one won; and a
    role change (an audit event)."""
    made = [
        walker.create(name="发现阶段项目", amount="500000"),
        walker.to(walker.create(name="立项项目", amount="1200000"), "project"),
        walker.to(walker.create(name="商务谈判项目", amount="2600000.50"), "negotiation"),
        walker.to(walker.create(name="已签约项目", amount="980000"), "closed"),
    ]
    user_set_role(actor=org["admin"], user=org["teammate"], access_level="manager")
    return made


def change_everything(walker: Any, org: dict[str, Any], deals: list[Any]) -> None:
    """What happens after the backup: a deal advanced, one lost, a new one, a user renamed."""
    walker.to(Opportunity.objects.get(pk=deals[0].pk), "intent")
    ps.opportunity_lose(
        opportunity=Opportunity.objects.get(pk=deals[1].pk),
        actor=org["seller"],
        reason="price",
        note="Went with a cheaper offer",
    )
    walker.create(name="备份之后的新项目", amount="70000")


def backup(path: Path, *args: str) -> str:
    out = StringIO()
    call_command("backup", str(path), *args, stdout=out)
    return out.getvalue()


def restore(path: Path, *args: str) -> str:
    out = StringIO()
    call_command("restore", str(path), *args, stdout=out)
    return out.getvalue()


def manifest_of(path: Path) -> dict[str, Any]:
    return json.loads(manifest_path(path).read_text(encoding="utf-8"))


def rewrite_manifest(path: Path, **changes: Any) -> None:
    manifest = manifest_of(path)
    manifest.update(changes)
    manifest_path(path).write_text(json.dumps(manifest), encoding="utf-8")


@both_engines
def test_restore_brings_back_exactly_what_the_backup_held(
    deals: list[Any], walker: Any, org: dict[str, Any], tmp_path: Path
) -> None:
    at_backup = state()
    file = tmp_path / "loudou.backup"
    printed = backup(file)
    manifest = manifest_of(file)

    assert "Backup written to" in printed
    assert manifest["format"] == FORMAT
    assert manifest["engine"] == connection.vendor
    assert manifest["rows"] == at_backup["rows"]
    assert manifest["rows"]["pipeline.opportunity"] == 4
    assert set(manifest["rows"]) == set(backup_tables())
    assert manifest["latest_migrations"]["pipeline"] == manifest["migrations"]["pipeline"][-1]
    assert manifest["bytes"] == file.stat().st_size
    assert stat.S_IMODE(file.stat().st_mode) == 0o600  # it holds password hashes
    assert not list(tmp_path.glob(".*tmp*"))  # the temporary file was renamed into place

    change_everything(walker, org, deals)
    Opportunity.objects.filter(pk=deals[2].pk).update(amount="1")  # a bad edit to undo
    changed = state()
    assert changed["deals"] != at_backup["deals"]
    assert changed["rows"]["pipeline.opportunity"] == 5

    report = json.loads(restore(file, "--yes", "--json"))

    assert state() == at_backup
    assert [(d[2], d[3], str(d[4])) for d in state()["deals"]] == [
        ("discover", "open", "500000.00"),
        ("project", "open", "1200000.00"),
        ("negotiation", "open", "2600000.50"),
        ("closed", "won", "980000.00"),
    ]
    assert report["replaced"] == changed["rows"]
    assert report["rows"] == at_backup["rows"]
    assert report["caches_verified"] is True
    # the restored database is a working one: the next write gets a fresh id and passes gates
    after = walker.create(name="恢复之后的新项目", amount="1000")
    assert after.pk > max(d[0] for d in at_backup["deals"])


@both_engines
def test_backup_keeps_working_while_deals_are_written(walker: Any, tmp_path: Path) -> None:
    """A writer keeps creating deals during the backup: the copy is one snapshot, its counts
    agree with the manifest, and the writer never fails."""
    for n in range(4):
        walker.create(name=f"已有项目 {n}")
    stop, failures, written = threading.Event(), [], []

    def keep_writing() -> None:
        try:
            while not stop.is_set():
                written.append(walker.create(name=f"并发项目 {len(written)}", amount="1000").pk)
        except Exception as exc:  # the assertion below shows it
            failures.append(repr(exc))
        finally:
            close_old_connections()
            connection.close()

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        for run in range(2):
            backup(tmp_path / f"run{run}.backup")
    finally:
        stop.set()
        writer.join()
    assert failures == []
    assert len(written) >= 1
    deals = [manifest_of(tmp_path / f"run{run}.backup")["rows"]["pipeline.opportunity"]
             for run in range(2)]  # fmt: skip
    # each backup saw between the deals there before and after the writer ran, in order
    assert 4 <= deals[0] <= deals[1] <= 4 + len(written)
    restore(tmp_path / "run1.backup", "--yes")  # verifies rows and the analytics caches
    assert live_counts() == manifest_of(tmp_path / "run1.backup")["rows"]
    # one snapshot: every deal in the copy came with its creation's history row
    assert not Opportunity.objects.filter(history__isnull=True).exists()


@both_engines
def test_every_refusal_changes_nothing(
    deals: list[Any], walker: Any, org: dict[str, Any], tmp_path: Path
) -> None:
    """Each refused restore leaves the database exactly as it was (one setup for all of them:
    a real backup, then the data changed, then each case tried and the manifest put back)."""
    file = tmp_path / "loudou.backup"
    backup(file)
    original = manifest_path(file).read_bytes()
    change_everything(walker, org, deals)
    before = state()

    def refusal(*args: str, **manifest_changes: Any) -> str:
        manifest_path(file).write_bytes(original)
        if manifest_changes:
            rewrite_manifest(file, **manifest_changes)
        with pytest.raises(CommandError) as refused:
            restore(file, *args)
        assert state() == before
        return str(refused.value)

    rows = sum(before["rows"].values())
    assert refusal().startswith(
        f"The database holds data: 5 opportunities ({rows} rows in all) would be replaced by "
        "the backup's 4 opportunities"
    )
    assert "run again with --yes to replace them" in refusal()

    other_engine = refusal("--yes", engine="sqlite" if POSTGRES else "postgresql")
    assert "restores into the same engine only" in other_engine
    assert "`loudou export all DIR`" in other_engine and "`loudou import all DIR`" in other_engine

    migrations = json.loads(original)["migrations"]
    migrations["pipeline"] = [*migrations["pipeline"], "9999_from_the_future"]
    assert refusal("--yes", migrations=migrations, loudou_version="9.0.0") == (
        "The backup was made by a newer loudou (9.0.0): its database has migrations this code "
        "does not know (pipeline.9999_from_the_future). Upgrade loudou to that version or later "
        "first, then restore. Nothing was changed."
    )

    good = file.read_bytes()
    middle = len(good) // 2
    file.write_bytes(good[:middle] + bytes([good[middle] ^ 0xFF]) + good[middle + 1 :])
    assert refusal("--yes") == (
        f"{file} is corrupted: its checksum differs from the one its manifest recorded when the "
        "backup was made (the file was changed or cut short). Nothing was changed; use another "
        "backup."
    )
    # a manifest rewritten to vouch for a cut file does not help: the contents are checked
    # (SQLite's integrity check; on PostgreSQL pg_restore's single transaction fails whole)
    file.write_bytes(good[: len(good) - 4096])
    cut = refusal("--yes", sha256=hashlib.sha256(file.read_bytes()).hexdigest())
    assert "nothing was changed" in cut.lower() or "is not a sound SQLite database" in cut

    missing = tmp_path / "nowhere.backup"
    notes = tmp_path / "notes.txt"
    notes.write_text("hello", encoding="utf-8")
    foreign = tmp_path / "other.backup"
    foreign.write_bytes(b"SQLite format 3\x00" + bytes(100))
    manifest_path(foreign).write_text('{"format": "other"}', encoding="utf-8")
    messages = []
    for path in (missing, notes, foreign):
        with pytest.raises(CommandError) as refused:
            restore(path, "--yes")
        messages.append(str(refused.value))
    assert messages == [
        f"{missing} does not exist.",
        f"{notes} is not a loudou backup: its manifest notes.txt.manifest.json is missing. Keep "
        "the two files together (a JSON-lines dump is restored with `loudou import all`).",
        f"{manifest_path(foreign)} is not the manifest of a loudou backup.",
    ]
    assert state() == before


@both_engines
def test_backup_does_not_overwrite_a_file_unless_forced(
    org: dict[str, Any], tmp_path: Path
) -> None:
    file = tmp_path / "loudou.backup"
    file.write_text("keep me", encoding="utf-8")
    with pytest.raises(CommandError) as refused:
        backup(file)
    assert "already exists: nothing was written" in str(refused.value)
    assert file.read_text(encoding="utf-8") == "keep me"
    assert not manifest_path(file).exists()
    backup(file, "--force")
    assert manifest_of(file)["rows"]["org.user"] == 9
    if not POSTGRES:  # the live file itself is never written over
        live = Path(connection.settings_dict["NAME"])
        size = live.stat().st_size
        with pytest.raises(CommandError) as refused:
            backup(live, "--force")
        assert str(refused.value) == (
            f"{live} is the live database (or one of its files): name another file."
        )
        assert live.stat().st_size == size and User.objects.count() == 9
    assert manifest_of(file)["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()


def test_disk_errors_are_sentences(tmp_path: Path) -> None:
    """The messages a full disk or a read-only place give (the cases below make them real)."""
    target = tmp_path / "x.backup"
    full = disk_error(OSError(28, "No space left on device"), target)
    read_only = disk_error(OSError(30, "Read-only file system"), target)
    assert str(full) == (
        f"The disk is full: {target} could not be written, so nothing was saved. Free some "
        "space or choose another disk, then try again."
    )
    assert str(read_only) == (
        f"{target} is on a read-only file system, so nothing was written. Choose a place loudou "
        "may write to."
    )
    assert isinstance(full, BackupFailed)


def _mount_tmpfs(where: Path, options: str) -> bool:
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True
    )
    return done.returncode == 0


@both_engines
def test_a_full_disk_and_a_read_only_disk_give_clear_errors(
    org: dict[str, Any], tmp_path: Path
) -> None:
    small, frozen = tmp_path / "small", tmp_path / "frozen"
    if not (_mount_tmpfs(small, "size=64k") and _mount_tmpfs(frozen, "ro,size=64k")):
        pytest.skip("a real full or read-only disk needs a tmpfs mount (root, CAP_SYS_ADMIN)")
    try:
        with pytest.raises(CommandError) as refused:
            backup(small / "loudou.backup")
        assert str(refused.value).startswith(f"The disk is full: {small / 'loudou.backup'}")
        assert list(small.iterdir()) == []  # the partial copy is gone
        with pytest.raises(CommandError) as refused:
            backup(frozen / "loudou.backup")
        assert str(refused.value).startswith(f"{frozen / 'loudou.backup'} is on a read-only")
    finally:
        subprocess.run(["umount", str(small)], check=False)
        subprocess.run(["umount", str(frozen)], check=False)


@pytest.mark.skipif(POSTGRES, reason="the live database file is SQLite's")
@both_engines
def test_sqlite_restore_into_a_read_only_database_changes_nothing(
    walker: Any, tmp_path: Path
) -> None:
    walker.create(name="备份之前的项目")
    file = tmp_path / "loudou.backup"
    backup(file)
    walker.create(name="备份之后的项目")
    before = state()
    live = Path(connection.settings_dict["NAME"])
    mode = stat.S_IMODE(live.stat().st_mode)
    live.chmod(0o444)
    try:
        # root may write anyway: make the file immutable instead
        if (
            os.access(live, os.W_OK)
            and subprocess.run(["chattr", "+i", str(live)], capture_output=True).returncode
        ):
            pytest.skip("root writes read-only files and chattr +i is not permitted here")
        with pytest.raises(CommandError) as refused:
            restore(file, "--yes")
    finally:
        subprocess.run(["chattr", "-i", str(live)], capture_output=True)
        live.chmod(mode)
    assert str(refused.value) == (
        f"The database {live} is read-only (its file, its directory or the file system may not "
        "be written), so nothing was changed."
    )
    assert state() == before


@pytest.mark.skipif(not POSTGRES, reason="pg_dump is PostgreSQL's tool")
@both_engines
def test_missing_or_old_pg_dump_is_named(tmp_path: Path, monkeypatch: Any) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("LOUDOU_PG_BINDIR", str(empty))
    with pytest.raises(CommandError) as refused:
        backup(tmp_path / "a.backup")
    assert str(refused.value).startswith("pg_dump was not found (looked in PATH, ")
    # an old client: a pg_dump that says it is version 9.6
    old = empty / "pg_dump"
    old.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n", encoding="utf-8")
    old.chmod(0o755)
    with pytest.raises(CommandError) as refused:
        backup(tmp_path / "a.backup")
    server = connection.pg_version // 10000
    assert str(refused.value).startswith(
        f"pg_dump 9 ({old}) is older than the PostgreSQL {server} server"
    )
    assert not (tmp_path / "a.backup").exists()
    assert not manifest_path(tmp_path / "a.backup").exists()
