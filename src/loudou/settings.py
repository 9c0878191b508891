"""Settings, all read from the environment.

LOUDOU_DEBUG            "1" for development (default off).
LOUDOU_SECRET_KEY       required when debug is off.
LOUDOU_ALLOWED_HOSTS    comma-separated; required when debug is off.
DATABASE_URL            default: SQLite file var/loudou.sqlite3 (WAL).
LOUDOU_BASE_CURRENCY    ISO 4217 code, default CNY.
LOUDOU_TIME_ZONE        default Asia/Shanghai.
LOUDOU_LANGUAGE         default zh-hans.
LOUDOU_VAR_DIR          where SQLite, uploads and backups live (default ./var).
LOUDOU_SECURE_COOKIES   production only: "0" to serve over plain http (a test on loopback);
                        default on (cookies marked Secure).
LOUDOU_HTTPS            production only: redirect http to https and send HSTS (default: the
                        value of LOUDOU_SECURE_COOKIES).
LOUDOU_HSTS_SECONDS     default 31536000 (a year; includes subdomains, preload allowed); 0 = off.
LOUDOU_PROXIES          how many reverse proxies stand in front (default 0): with 1 or more, the
                        client address and the scheme are read from X-Forwarded-For and
                        X-Forwarded-Proto, which the proxy must set (and overwrite).
LOUDOU_SESSION_HOURS    a sign-in lasts this long (default 12: a working day).
LOUDOU_LOG_FORMAT       "json" (one JSON object per line, the production default) or "text".
LOUDOU_LOG_LEVEL        default INFO (one line per request); WARNING silences request lines.
LOUDOU_HEAP_KEEP_MB     freed memory a process keeps for its next large analytic (default 1024;
                        0 = the C library's defaults): see loudou.core.memory.
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
    "loudou.learning",
    "loudou.interop",
    "loudou.web",
    "loudou.api",
]

MIDDLEWARE = [
    "loudou.core.requestlog.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "loudou.core.security.SecurityHeadersMiddleware",
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

# Password sign-ins go through the throttle: too many failures for one account or from one
# address refuse further tries for a while (org/signin.py).
AUTHENTICATION_BACKENDS = ["loudou.org.signin.ThrottledModelBackend"]

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


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise ImproperlyConfigured(f"{name} must be a whole number (0 or more), not {value!r}.")
    return number


# Freed memory each process keeps for its next large analytic (loudou.core.memory).
LOUDOU_HEAP_KEEP_MB = _env_int("LOUDOU_HEAP_KEEP_MB", 1024)

# Sign-ins last a working day, whatever the activity; the browser forgets them when closed.
SESSION_COOKIE_AGE = _env_int("LOUDOU_SESSION_HOURS", 12) * 3600
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
LOUDOU_PROXIES = _env_int("LOUDOU_PROXIES", 0)
if LOUDOU_PROXIES:
    # Only when a proxy overwrites X-Forwarded-Proto: otherwise a client could claim https.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = False

if not DEBUG:
    SESSION_COOKIE_SECURE = _env_flag("LOUDOU_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    LOUDOU_HTTPS = _env_flag("LOUDOU_HTTPS", SESSION_COOKIE_SECURE)
    if LOUDOU_HTTPS:
        SECURE_SSL_REDIRECT = True
        # Load balancers probe over plain http inside the network.
        SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
        SECURE_HSTS_SECONDS = _env_int("LOUDOU_HSTS_SECONDS", 365 * 24 * 3600)
        SECURE_HSTS_INCLUDE_SUBDOMAINS = True
        SECURE_HSTS_PRELOAD = True

LOUDOU_LOG_FORMAT = os.environ.get("LOUDOU_LOG_FORMAT", "text" if DEBUG else "json").lower()
if LOUDOU_LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(
        f"LOUDOU_LOG_FORMAT must be json or text, not {LOUDOU_LOG_FORMAT!r}."
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "loudou.core.requestlog.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "loudou.core.requestlog.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": LOUDOU_LOG_FORMAT,
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOUDOU_LOG_LEVEL", "WARNING")},
    "loggers": {
        # One line per request; the root level stays WARNING so libraries stay quiet.
        "loudou.request": {"level": os.environ.get("LOUDOU_LOG_LEVEL", "INFO")},
        # The request line already says 4xx/5xx; Django's own copy of it would say it twice.
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
    },
}
