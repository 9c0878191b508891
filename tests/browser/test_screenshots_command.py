"""`loudou screenshots`: its options, its errors when Chromium or the demo data is missing, and
one real run (as a separate process, the way it is used) that writes the PNG files."""

import datetime as dt
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from loudou.customers.services import account_create
from loudou.org.services import user_create, user_set_preferences
from loudou.pipeline.services import opportunity_create
from loudou.web.management.commands.screenshots import SHOT_NAMES, chromium_executable
from tests.conftest import credit_code


def test_options_are_checked() -> None:
    with pytest.raises(CommandError, match="invalid choice: 'fr'"):
        call_command("screenshots", "--lang", "fr")
    with pytest.raises(CommandError, match="invalid choice: 'kanban'"):
        call_command("screenshots", "--only", "kanban")
    assert SHOT_NAMES == [
        "login",
        "dashboard",
        "board",
        "list",
        "opportunity",
        "accounts",
        "account",
        "approvals",
        "funnel",
        "conversion",
        "flow",
        "forecast",
        "model",
        "preferences",
        "import",
        "import-review",
        "audit",
        "gate",
    ]


@pytest.mark.django_db
def test_without_demo_data_it_says_so_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "shots"
    with pytest.raises(CommandError) as error:
        call_command("screenshots", "--out", str(out))
    message = str(error.value)
    assert message.startswith("No demo data in the database (")
    assert "there is no active user 'manager'" in message
    assert "make demo" in message
    assert not out.exists()


@pytest.mark.django_db
def test_a_wrong_password_is_named(org: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="User 'seller' does not have the password given"):
        call_command("screenshots", "--only", "dashboard", "--out", str(tmp_path))


@pytest.mark.django_db
def test_without_chromium_it_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "shots"
    monkeypatch.setenv("LOUDOU_CHROMIUM", "/nonexistent/chromium")
    with pytest.raises(CommandError, match=r"^LOUDOU_CHROMIUM=/nonexistent/chromium is not an"):
        call_command("screenshots", "--only", "login", "--out", str(out))

    monkeypatch.delenv("LOUDOU_CHROMIUM")
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(CommandError, match=r"^Chromium is not installed \(apt-get install"):
        call_command("screenshots", "--only", "login", "--out", str(out))
    assert not out.exists()


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_a_run_writes_the_pages_asked_for(
    org: dict[str, Any], settings: Any, tmp_path: Path
) -> None:
    try:
        chromium_executable()
    except Exception as missing:
        if os.environ.get("LOUDOU_REQUIRE_BROWSER") == "1":
            raise
        pytest.skip(f"no browser: {missing}")
    # The command runs as its own process, which knows only the default password hashers.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    users = {
        name: user_create(
            actor=None,
            username=name,
            password="shots-pw-1234",
            branch=org["beijing"],
            job_role=role,
            access_level=level,
            check_password=False,
        )
        for name, role, level in [
            ("shot_seller", "account_manager", "seller"),
            ("shot_manager", "branch_gm", "manager"),
        ]
    }
    # The seller reads Chinese; the English shots switch the page (as a user would) and the
    # preference is put back afterwards.
    user_set_preferences(actor=None, user=users["shot_seller"], language="zh-hans")
    account = account_create(
        actor=users["shot_seller"],
        name="华北电力集团",
        credit_code=credit_code(9),
        industry="power",
        size_band="large",
        organisations_count=12,
        it_need="集团财务管控",
        product_fit="多组织财务",
    )
    opportunity_create(
        actor=users["shot_seller"],
        account=account,
        name="财务共享平台",
        amount="1000000",
        close_date=timezone.localdate() + dt.timedelta(days=60),
        source="Referral",
        evidence={"need_found": "CFO described the need"},
    )
    out = tmp_path / "shots"
    env = {**os.environ, "DATABASE_URL": _database_url(), "LOUDOU_DEBUG": "1"}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "loudou",
            "screenshots",
            "--out",
            str(out),
            "--lang",
            "en",
            "--only",
            "login",
            "--only",
            "gate",
            "--seller",
            "shot_seller",
            "--manager",
            "shot_manager",
            "--password",
            "shots-pw-1234",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.iterdir()) == ["gate-en.png", "login-en.png"]
    assert _png_size(out / "gate-en.png") == (1440, 900)  # the viewport, dialog open
    width, height = _png_size(out / "login-en.png")
    assert width == 1440 and height >= 900
    progress = [line for line in run.stdout.splitlines() if line.startswith("[")]
    assert [line.split("] ", 1)[1].split()[0] for line in progress] == [
        str(out / "login-en.png"),
        str(out / "gate-en.png"),
    ]
    assert progress[0].startswith("[ 1/2]") and progress[1].startswith("[ 2/2]")
    users["shot_seller"].refresh_from_db()
    assert users["shot_seller"].language == "zh-hans"
