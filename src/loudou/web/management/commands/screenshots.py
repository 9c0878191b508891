"""`loudou screenshots`: a full-page PNG of every page, in English and in Chinese.

Serves the app from this process (against the configured database, normally the demo that
`make demo` loads), drives Debian's Chromium through Playwright, signs in as the demo seller
and manager, and writes `<page>-<lang>.png` (1440×900 viewport) into `docs/screenshots/`.
The user guide shows these files.

The demo users' language preference is switched through the page's language switch (as a
user would) and put back as it was at the end.
"""

import argparse
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.db.models import Case, Count, Value, When
from django.urls import reverse
from django.utils.http import urlencode

LANGUAGES = ("en", "zh-hans")
LOCALES = {"en": "en-US", "zh-hans": "zh-CN"}  # what the browser asks for in each language
VIEWPORT = {"width": 1440, "height": 900}
# Debian's Chromium runs as root in a container and offline: no sandbox, no GPU, no calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--font-render-hinting=none",
]
DEFAULT_PASSWORD = "loudou-demo"


class BrowserMissing(Exception):
    """Chromium (or Playwright) is not there to drive."""


def chromium_executable() -> str:
    """Debian's Chromium (LOUDOU_CHROMIUM names another binary). loudou never downloads a
    browser (`playwright install`): CI installs the distribution's package."""
    explicit = os.environ.get("LOUDOU_CHROMIUM", "")
    if explicit:
        if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
            return explicit
        raise BrowserMissing(f"LOUDOU_CHROMIUM={explicit} is not an executable file")
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise BrowserMissing(
        "Chromium is not installed (apt-get install chromium; loudou uses the distribution's "
        "Chromium, not `playwright install`)"
    )


def launch_chromium(playwright: Any) -> Any:
    """A headless Chromium from a started Playwright (sync API)."""
    return playwright.chromium.launch(
        executable_path=chromium_executable(), headless=True, args=CHROMIUM_ARGS
    )


@dataclass
class DemoData:
    """What the pages are shown with, found in the database before the browser starts."""

    seller: Any = None
    manager: Any = None
    negotiation_deal: Any = None
    group_account: Any = None
    gate_deal: Any = None
    gate_stage: str = ""
    languages: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Shot:
    name: str
    user: str  # "seller", "manager" or "" (signed out)
    url: Callable[[DemoData], str]
    needs: tuple[str, ...] = ()
    act: Callable[[Any, DemoData], None] | None = None
    full_page: bool = True


def _open_gate_dialog(page: Any, data: DemoData) -> None:
    """Drag the deal's card to the next column, as a seller would; the gate refuses and the
    dialog lists what is missing."""
    card = page.locator(f".deal[data-id='{data.gate_deal.pk}']")
    if not card.count():  # below its column's first screenful: search for it instead
        page.goto(reverse("web:board") + "?" + urlencode({"q": data.gate_deal.name}))
    card.drag_to(page.locator(f"section[data-drop-stage='{data.gate_stage}'] .column-body"))
    page.locator("#modal[open] [data-dialog='gate']").wait_for()
    page.wait_for_timeout(300)  # the dialog's opening transition


# A Salesforce report export as Excel on Chinese Windows saves it (GBK), for the Import page.
SALESFORCE_SAMPLE = (
    "Opportunity ID,Opportunity Name,Account Name,Opportunity Owner,Stage,Probability (%),"
    "Amount,Close Date,Created Date\n"
    '006S1,集团财务共享二期,华润集团,seller,Needs Analysis,20,"1,800,000",2027/3/31,2026/10/8\n'
    '006S2,人力云升级,招商局集团,seller,Proposal/Price Quote,75,"950,000",2027/1/15,2026/8/20\n'
    '006S3,供应链协同平台,中国中化,seller,Closed Won,100,"2,400,000",2026/11/2,2026/5/12\n'
)


def _upload_sample(page: Any, data: DemoData) -> None:
    """Upload a Salesforce export on the Import page: the review shows the preview, the column
    and stage mappings and the dry run."""
    del data
    page.locator("input[name=format][value=salesforce]").check()
    page.locator("input[name=file]").set_input_files(
        {
            "name": "salesforce-opportunities.csv",
            "mimeType": "text/csv",
            "buffer": SALESFORCE_SAMPLE.encode("gbk"),
        }
    )
    page.locator("#upload-form button.primary").click()
    page.wait_for_url("**/import/*/")
    page.wait_for_load_state("networkidle")


SHOTS = [
    Shot("login", "", lambda d: reverse("web:login")),
    Shot("dashboard", "seller", lambda d: reverse("web:dashboard")),
    Shot("board", "seller", lambda d: reverse("web:board")),
    Shot("list", "seller", lambda d: reverse("web:opportunity-list")),
    Shot(
        "opportunity",
        "seller",
        lambda d: reverse("web:opportunity-detail", args=[d.negotiation_deal.pk]),
        needs=("negotiation_deal",),
    ),
    Shot("accounts", "seller", lambda d: reverse("web:account-list")),
    Shot(
        "account",
        "manager",
        lambda d: reverse("web:account-detail", args=[d.group_account.pk]),
        needs=("group_account",),
    ),
    Shot("approvals", "manager", lambda d: reverse("web:approvals")),
    Shot("funnel", "manager", lambda d: reverse("web:funnel")),
    Shot("conversion", "manager", lambda d: reverse("web:analytics-conversion")),
    Shot("flow", "manager", lambda d: reverse("web:analytics-flow")),
    Shot("forecast", "manager", lambda d: reverse("web:analytics-forecast")),
    Shot("model", "manager", lambda d: reverse("web:analytics-model")),
    Shot("preferences", "seller", lambda d: reverse("web:preferences")),
    Shot("import", "manager", lambda d: reverse("web:import")),
    Shot("import-review", "manager", lambda d: reverse("web:import"), act=_upload_sample),
    # The overrides: what a manager looks for first (the unfiltered log opens on the preference
    # changes the screenshots themselves make).
    Shot("audit", "manager", lambda d: reverse("web:audit") + "?action=gate.override"),
    Shot(
        "gate",
        "seller",
        lambda d: reverse("web:board") + f"?owner={d.seller.pk}",
        needs=("gate_deal",),
        act=_open_gate_dialog,
        full_page=False,
    ),
]
SHOT_NAMES = [s.name for s in SHOTS]


class Command(BaseCommand):
    help = (
        "Write a full-page screenshot of every page, in English and Chinese, into "
        "docs/screenshots/ (needs Debian's Chromium and the demo data of `make demo`)."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--out",
            default="docs/screenshots",
            help="Directory for the PNG files (default: docs/screenshots).",
        )
        parser.add_argument(
            "--lang",
            choices=LANGUAGES,
            action="append",
            help="Only this language (repeatable; default: both).",
        )
        parser.add_argument(
            "--only",
            choices=SHOT_NAMES,
            action="append",
            metavar="NAME",
            help="Only this page (repeatable): " + ", ".join(SHOT_NAMES) + ".",
        )
        parser.add_argument("--seller", default="seller", help="The demo seller's user name.")
        parser.add_argument("--manager", default="manager", help="The demo manager's user name.")
        parser.add_argument(
            "--password",
            default=DEFAULT_PASSWORD,
            help="The demo users' password (default: the demo's).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        languages = [lang for lang in LANGUAGES if lang in (options["lang"] or LANGUAGES)]
        shots = [s for s in SHOTS if s.name in (options["only"] or SHOT_NAMES)]
        out = Path(options["out"])
        data = self._demo_data(shots, options)
        try:
            executable = chromium_executable()
        except BrowserMissing as missing:
            raise CommandError(str(missing)) from missing
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as error:
            raise CommandError(
                "Playwright is not installed: pip install -e '.[dev]' (or pip install playwright)"
            ) from error
        out.mkdir(parents=True, exist_ok=True)
        count = len(shots) * len(languages)
        self.stdout.write(f"chromium: {executable}; {count} screenshot{'s' if count > 1 else ''}")
        connections.close_all()  # the server threads open their own; this thread is done
        server, base_url = _start_server()
        # A refused gate answers 409 by design: Django's "Conflict: ..." warnings are noise here
        # (set after the server's setup, which configures logging again).
        logging.getLogger("django.request").setLevel(logging.ERROR)
        # The in-process server's request lines would bury the command's own progress.
        logging.getLogger("loudou.request").setLevel(logging.WARNING)
        try:
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                try:
                    self._take(browser, base_url, shots, languages, data, options, out)
                finally:
                    browser.close()
        finally:
            server.shutdown()
            server.server_close()
            self._restore_languages(data)
        self.stdout.write(self.style.SUCCESS(f"screenshots written to {out}"))

    # ---- the data ---------------------------------------------------------------------------
    def _demo_data(self, shots: list[Shot], options: dict[str, Any]) -> DemoData:
        """Find the users and deals the pages are shown with; say clearly what is missing."""
        from loudou.org.models import User

        data = DemoData()
        database = settings.DATABASES["default"]["NAME"]
        hint = (
            f"No demo data in the database ({database}): {{}}. Load it with `make demo` (or "
            "`loudou demo`), or point DATABASE_URL at a database that has it."
        )
        for role in sorted({s.user for s in shots if s.user}):
            username = options[role]
            user = User.objects.filter(username=username, is_active=True).first()
            if user is None:
                raise CommandError(hint.format(f"there is no active user {username!r}"))
            if not user.check_password(options["password"]):
                raise CommandError(
                    f"User {username!r} does not have the password given (--password); the demo "
                    f"users' password is {DEFAULT_PASSWORD!r}."
                )
            setattr(data, role, user)
            data.languages[user.pk] = user.language
        needs = {n for s in shots for n in s.needs}
        if "negotiation_deal" in needs:
            data.negotiation_deal = _negotiation_deal(data.seller)
            if data.negotiation_deal is None:
                raise CommandError(hint.format("the seller has no open deal in negotiation"))
        if "group_account" in needs:
            data.group_account = _group_account(data.manager)
            if data.group_account is None:
                raise CommandError(hint.format("the manager sees no group with subsidiaries"))
        if "gate_deal" in needs:
            found = _gate_deal(data.seller)
            if found is None:
                raise CommandError(
                    hint.format("the seller has no open deal whose next gate is missing criteria")
                )
            data.gate_deal, data.gate_stage = found
        return data

    def _restore_languages(self, data: DemoData) -> None:
        from loudou.org.models import User
        from loudou.org.services import user_set_preferences

        for user in User.objects.filter(pk__in=data.languages):
            original = data.languages[user.pk]
            if user.language != original:
                user_set_preferences(actor=user, user=user, language=original)

    # ---- the browser ------------------------------------------------------------------------
    def _take(
        self,
        browser: Any,
        base_url: str,
        shots: list[Shot],
        languages: list[str],
        data: DemoData,
        options: dict[str, Any],
        out: Path,
    ) -> None:
        total, number = len(shots) * len(languages), 0
        for language in languages:
            pages: dict[str, Any] = {}
            try:
                for shot in shots:
                    number += 1
                    started = time.monotonic()
                    page = pages.get(shot.user)
                    if page is None:
                        page = pages[shot.user] = _signed_in_page(
                            browser,
                            base_url,
                            language,
                            options[shot.user] if shot.user else "",
                            options["password"],
                        )
                    path = out / f"{shot.name}-{language}.png"
                    _shoot(page, shot, data, language, path)
                    self.stdout.write(
                        f"[{number:>2}/{total}] {path}  "
                        f"({shot.user or 'signed out'}, {time.monotonic() - started:.1f} s)"
                    )
            finally:
                for page in pages.values():
                    page.context.close()


def _signed_in_page(
    browser: Any, base_url: str, language: str, username: str, password: str
) -> Any:
    context = browser.new_context(
        base_url=base_url, locale=LOCALES[language], viewport=VIEWPORT, device_scale_factor=1
    )
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(reverse("web:login"))
    if username:
        page.locator("input[name=username]").fill(username)
        page.locator("input[name=password]").fill(password)
        page.locator("form:has(input[name=password]) button").click()
        page.wait_for_load_state()
        if "/login/" in page.url:
            raise CommandError(f"Signing in as {username!r} failed.")
    if page.locator("html").get_attribute("lang") != language:
        # The user's stored language wins over the browser's: switch it as a user would.
        with page.expect_navigation():
            page.locator(f".langswitch button[value='{language}']").click()
    return page


def _shoot(page: Any, shot: Shot, data: DemoData, language: str, path: Path) -> None:
    response = page.goto(shot.url(data))
    if response is None or response.status >= 400:
        status = response.status if response else "no answer"
        raise CommandError(f"{shot.name}: {page.url} answered {status}")
    page.wait_for_load_state("networkidle")
    if page.locator("html").get_attribute("lang") != language:
        raise CommandError(f"{shot.name}: the page is not in {language}")
    if shot.act is not None:
        shot.act(page, data)
    page.evaluate("document.fonts.ready")
    page.screenshot(path=str(path), full_page=shot.full_page, animations="disabled")


# ---- choosing what to show ------------------------------------------------------------------
def _negotiation_deal(seller: Any) -> Any:
    from loudou.pipeline.models import Opportunity, Status

    visible = Opportunity.objects.visible_to(seller).filter(
        status=Status.OPEN, stage__key="negotiation"
    )
    # The richest page: the seller's own deal with the most history behind it.
    return (
        visible.annotate(
            changes=Count("history"),
            own=Case(When(owner=seller, then=Value(0)), default=Value(1)),
        )
        .order_by("own", "-changes", "-amount", "pk")
        .first()
    )


def _group_account(manager: Any) -> Any:
    """A group the manager sees, with subsidiaries: a target with deals if there is one."""
    from loudou.customers.models import Account

    return (
        Account.objects.visible_to(manager)
        .filter(parent__isnull=True)
        .annotate(
            members=Count("subsidiaries", distinct=True),
            deals=Count("opportunities", distinct=True),
        )
        .filter(members__gt=0)
        .order_by("-is_target", "-deals", "-members", "pk")
        .first()
    )


def _gate_deal(seller: Any) -> tuple[Any, str] | None:
    """An open deal of the seller, on the first screen of its column, whose next stage's gate
    still misses criteria the seller can evidence in the dialog."""
    from loudou.pipeline.gates import gate_check
    from loudou.pipeline.models import Opportunity, Status
    from loudou.playbooks.models import CriterionKind, StageKind

    deals = (
        Opportunity.objects.filter(owner=seller, status=Status.OPEN, playbook__is_current=True)
        .select_related("stage", "playbook", "account")
        .order_by("stage__order", "close_date", "pk")
    )
    for opp in deals:
        stages = opp.playbook.ordered_stages()
        later = [s for s in stages if s.order > opp.stage.order and s.kind == StageKind.OPEN]
        if not later:
            continue
        missing = gate_check(opp, later[0])
        if any(state.criterion.kind == CriterionKind.CHECK for state in missing):
            return opp, later[0].key
    return None


# ---- serving the app from this process ------------------------------------------------------
def _start_server() -> tuple[Any, str]:
    """The WSGI app with static files, threaded, on a free local port."""
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            del format, args

    # Served on 127.0.0.1 over plain HTTP for this run only.
    if "*" not in settings.ALLOWED_HOSTS and "127.0.0.1" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.1"]
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler)  # port 0: any free port
    server.set_app(StaticFilesHandler(get_wsgi_application()))
    threading.Thread(target=server.serve_forever, name="screenshots-server", daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"
