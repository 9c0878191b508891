"""Settings come from the environment; production settings that are missing are named clearly."""

import os
import subprocess
import sys

import pytest


def load_settings(**env):
    """Import the settings in a fresh interpreter with `env`; return (exit code, stderr)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LOUDOU_", "DATABASE_URL"))}
    clean["LOUDOU_ENV_FILE"] = "/nonexistent/.env"
    clean.update(env)
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'loudou.settings'); "
        "django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.TIME_ZONE, s.LOUDOU_BASE_CURRENCY, s.DEBUG)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=clean, capture_output=True, text=True, timeout=60
    )
    return proc.returncode, proc.stdout.strip(), proc.stderr


def test_production_without_a_secret_key_is_refused(tmp_path):
    code, _out, err = load_settings(LOUDOU_VAR_DIR=str(tmp_path))
    assert code != 0
    assert "ImproperlyConfigured: LOUDOU_SECRET_KEY is not set" in err


def test_production_without_allowed_hosts_is_refused(tmp_path):
    code, _out, err = load_settings(LOUDOU_VAR_DIR=str(tmp_path), LOUDOU_SECRET_KEY="x" * 50)
    assert code != 0
    assert "LOUDOU_ALLOWED_HOSTS is not set" in err


def test_defaults_sqlite_shanghai_cny(tmp_path):
    code, out, err = load_settings(LOUDOU_VAR_DIR=str(tmp_path), LOUDOU_DEBUG="1")
    assert code == 0, err
    assert out == "django.db.backends.sqlite3 Asia/Shanghai CNY True"


def test_environment_overrides(tmp_path):
    code, out, err = load_settings(
        LOUDOU_VAR_DIR=str(tmp_path),
        LOUDOU_SECRET_KEY="k" * 50,
        LOUDOU_ALLOWED_HOSTS="crm.example.com",
        LOUDOU_TIME_ZONE="Europe/Paris",
        LOUDOU_BASE_CURRENCY="usd",
        DATABASE_URL="postgres://u@127.0.0.1:5432/db",
    )
    assert code == 0, err
    assert out == "django.db.backends.postgresql Europe/Paris USD False"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LOUDOU_DEBUG": "maybe"}, "LOUDOU_DEBUG must be"),
        ({"LOUDOU_DEBUG": "1", "LOUDOU_BASE_CURRENCY": "RMB1"}, "three-letter ISO 4217"),
        ({"LOUDOU_DEBUG": "1", "DATABASE_URL": "mysql://x@h/db"}, "supports SQLite and PostgreSQL"),
        ({"LOUDOU_DEBUG": "1", "DATABASE_URL": "nonsense"}, "DATABASE_URL"),
    ],
)
def test_bad_values_are_named(tmp_path, env, message):
    code, _out, err = load_settings(LOUDOU_VAR_DIR=str(tmp_path), **env)
    assert code != 0
    assert message in err


def test_sqlite_uses_wal(tmp_path, db):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"


def test_an_env_file_is_read_and_the_environment_wins(tmp_path):
    env_file = tmp_path / "dev.env"
    env_file.write_text("# dev\nLOUDOU_DEBUG=1\nLOUDOU_TIME_ZONE='Asia/Tokyo'\n", encoding="utf-8")
    code, out, err = load_settings(
        LOUDOU_VAR_DIR=str(tmp_path), LOUDOU_ENV_FILE=str(env_file), LOUDOU_BASE_CURRENCY="EUR"
    )
    assert code == 0, err
    assert out == "django.db.backends.sqlite3 Asia/Tokyo EUR True"


def test_a_broken_env_file_names_the_line(tmp_path):
    env_file = tmp_path / "dev.env"
    env_file.write_text("LOUDOU_DEBUG=1\nnonsense\n", encoding="utf-8")
    code, _out, err = load_settings(LOUDOU_VAR_DIR=str(tmp_path), LOUDOU_ENV_FILE=str(env_file))
    assert code != 0
    assert f"{env_file}:2: expected KEY=VALUE" in err
