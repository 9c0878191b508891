"""Settings, all read from the environment.

LOUDOU_DEBUG            "1" for development (default off).
LOUDOU_SECRET_KEY       required when debug is off.
LOUDOU_ALLOWED_HOSTS    comma-separated; required when debug is off.
DATABASE_URL            default: SQLite file var/loudou.sqlite3 (WAL).
LOUDOU_BASE_CURRENCY    ISO 4217 code, default CNY.
LOUDOU_TIME_ZONE        default Asia/Shanghai.
LOUDOU_LANGUAGE         default zh-hans.
LOUDOU_VAR_DIR          where SQLite, uploads and backups live (default ./var).
LOUDOU_ENV_FILE         a file of KEY=VALUE lines read first (default ./.env; `make install`
                        writes one with LOUDOU_DEBUG=1 in a development checkout). Variables
                        already set in the environment win.
"""

import os
from pathlib import Path
from typing import Any

import dj_database_url
import plotly
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent


def _load_env_file(path: Path) -> None:
    """Read KEY=VALUE lines (# comments, blank lines) into the environment, without overriding."""
    if not path.is_file():
        return
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ImproperlyConfigured(f"{path}:{number}: expected KEY=VALUE, not {raw!r}")
        os.environ.setdefault(key.strip(), value.strip().strip("'\""))


_load_env_file(Path(os.environ.get("LOUDOU_ENV_FILE", Path.cwd() / ".env")))
VAR_DIR = Path(os.environ.get("LOUDOU_VAR_DIR", Path.cwd() / "var")).resolve()


def _env_flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be 1/0, true/false, yes/no or on/off, not {value!r}.")


DEBUG = _env_flag("LOUDOU_DEBUG")

SECRET_KEY = os.environ.get("LOUDOU_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "LOUDOU_SECRET_KEY is not set. Production settings (LOUDOU_DEBUG off) need a long "
            "random secret key, e.g. export LOUDOU_SECRET_KEY=$(python -c "
            "'import secrets; print(secrets.token_urlsafe(50))'). "
            "For development set LOUDOU_DEBUG=1."
        )
    SECRET_KEY = "loudou-development-only-key-never-use-in-production"

_hosts = os.environ.get("LOUDOU_ALLOWED_HOSTS", "")
ALLOWED_HOSTS = [h.strip() for h in _hosts.split(",") if h.strip()]
if not ALLOWED_HOSTS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "LOUDOU_ALLOWED_HOSTS is not set. Production settings need the host names the site "
            "is served under, comma-separated (e.g. crm.example.com,127.0.0.1)."
        )
    ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]

LOUDOU_BASE_CURRENCY = os.environ.get("LOUDOU_BASE_CURRENCY", "CNY").upper()
if len(LOUDOU_BASE_CURRENCY) != 3 or not LOUDOU_BASE_CURRENCY.isalpha():
    raise ImproperlyConfigured(
        f"LOUDOU_BASE_CURRENCY must be a three-letter ISO 4217 code, not {LOUDOU_BASE_CURRENCY!r}."
    )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "ninja",
    "loudou.core",
    "loudou.org",
    "loudou.playbooks",
    "loudou.customers",
    "loudou.pipeline",
    "loudou.analytics",
    "loudou.interop",
    "loudou.web",
    "loudou.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "loudou.web.middleware.RefuseNulCharacters",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "loudou.web.middleware.UserPreferencesMiddleware",
]

ROOT_URLCONF = "loudou.urls"
WSGI_APPLICATION = "loudou.wsgi.application"
AUTH_USER_MODEL = "org.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "loudou.web.context.navigation",
            ],
        },
    },
]


def _database_settings() -> dict[str, Any]:
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{VAR_DIR / 'loudou.sqlite3'}"
    try:
        db = dj_database_url.parse(url, conn_max_age=60 if not url.startswith("sqlite") else 0)
    except Exception as exc:  # the parser raises several types; all mean a bad URL
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
    if db["ENGINE"] == "django.db.backends.sqlite3":
        # IMMEDIATE transactions take the write lock up front, so two writers queue on the busy
        # timeout instead of failing with "database is locked" when a read upgrades to a write.
        db["OPTIONS"] = {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
            ),
        }
        db["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
    elif db["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(
            f"DATABASE_URL names {db['ENGINE']}; loudou supports SQLite and PostgreSQL."
        )
    db["ATOMIC_REQUESTS"] = False
    return dict(db)


DATABASES = {"default": _database_settings()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = os.environ.get("LOUDOU_LANGUAGE", "zh-hans")
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("LOUDOU_TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# plotly.js ships inside the plotly wheel; served as static/plotly/plotly.min.js (no CDN).
STATICFILES_DIRS = [("plotly", str(Path(plotly.__file__).parent / "package_data"))]
STATIC_ROOT = VAR_DIR / "static"
# WhiteNoise warns on every start when the directory is missing; collectstatic fills it.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = VAR_DIR / "media"

LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:dashboard"
LOGOUT_REDIRECT_URL = "web:login"

if not DEBUG:
    SESSION_COOKIE_SECURE = _env_flag("LOUDOU_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SESSION_COOKIE_HTTPONLY = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOUDOU_LOG_LEVEL", "WARNING")},
}
