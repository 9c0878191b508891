"""Browser tests: Playwright (sync API) driving Debian's Chromium against pytest-django's live
server, in English and in Chinese.

- Chromium missing: the tests skip with the reason, or fail when LOUDOU_REQUIRE_BROWSER=1 (CI).
- Every page opened through `browse` is watched: a JavaScript error, a console error, a server
  error (5xx), a failed or missing static file of ours, or an alert/confirm dialog fails the test.
- The live server needs committed data, so these tests use a transactional database (a file
  for SQLite, which the server thread shares; PostgreSQL works as is).
"""

import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from loudou.web.management.commands.screenshots import (
    LOCALES,
    VIEWPORT,
    BrowserMissing,
    launch_chromium,
)

PASSWORD = "loudou-test-pw-1"  # what tests/conftest.py's `org` gives every user
TIMEOUT_MS = 15_000

# Chromium reports every 4xx answer as a console error; the 404 and refused-form answers are
# expected and asserted by the tests themselves, so only those console lines are let through.
HTTP_4XX_CONSOLE = re.compile(r"^Failed to load resource: the server responded with a status of 4")


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """One headless Chromium for the package. Playwright's sync API keeps an asyncio loop marked
    as running on the main thread, which Django's async-safety check takes for async code: the
    check is switched off while this browser lives (package scope: only for these tests)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - dev extras not installed
        _missing("Playwright is not installed (pip install -e '.[dev]')")
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        try:
            chromium = launch_chromium(playwright)
        except BrowserMissing as missing:
            _missing(str(missing))
        yield chromium
        chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _missing(reason: str) -> None:
    if os.environ.get("LOUDOU_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}; LOUDOU_REQUIRE_BROWSER=1 requires the browser tests to run")
    pytest.skip(f"browser tests skipped: {reason}")


@pytest.fixture(autouse=True)
def _plain_http_cookies(settings: Any) -> None:
    """The live server speaks plain HTTP: secure-only cookies would never come back."""
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False


def watch(page: Any, origin: str, problems: list[str]) -> None:
    """Record on `problems` what must never happen on a page of ours."""

    def on_console(message: Any) -> None:
        if message.type == "error" and not HTTP_4XX_CONSOLE.match(message.text):
            problems.append(f"console error on {page.url}: {message.text}")

    def on_response(response: Any) -> None:
        if not response.url.startswith(origin):
            return
        if response.status >= 500:
            problems.append(
                f"server error {response.status}: {response.request.method} {response.url}"
            )
        elif response.status >= 400 and "/static/" in response.url:
            problems.append(f"static file {response.status}: {response.url}")

    def on_request_failed(request: Any) -> None:
        # ERR_ABORTED: the browser dropped the load because the page navigated away.
        aborted = "ERR_ABORTED" in (request.failure or "")
        if request.url.startswith(origin) and "/static/" in request.url and not aborted:
            problems.append(f"static file failed ({request.failure}): {request.url}")

    def on_dialog(dialog: Any) -> None:
        problems.append(f"unexpected {dialog.type} dialog: {dialog.message!r}")
        dialog.dismiss()

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"JavaScript error on {page.url}: {error}"))
    page.on("response", on_response)
    page.on("requestfailed", on_request_failed)
    page.on("dialog", on_dialog)


def sign_in(page: Any, username: str, password: str = PASSWORD) -> None:
    """Sign in through the login form and wait until it has let us through."""
    page.goto("/login/")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.locator("form:has(input[name=password]) button").click()
    page.wait_for_url(lambda url: "/login/" not in url)


def switch_language(page: Any, language: str) -> None:
    """Click the top bar's language switch (if the page is not in `language` yet)."""
    if page.locator("html").get_attribute("lang") == language:
        return
    with page.expect_navigation():
        page.locator(f".langswitch button[value='{language}']").click()
    assert page.locator("html").get_attribute("lang") == language


@pytest.fixture
def browse(browser: Any, live_server: Any) -> Iterator[Callable[..., Any]]:
    """browse("seller", "zh-hans") → a page in a fresh browser context (its own cookies) whose
    browser asks for that language, signed in as that user (None: anonymous). The test fails
    if any page it opened logged a problem (see `watch`)."""
    contexts: list[Any] = []
    problems: list[str] = []

    def open_page(username: str | None = None, language: str = "en") -> Any:
        context = browser.new_context(
            base_url=live_server.url, locale=LOCALES[language], viewport=VIEWPORT
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        watch(page, live_server.url, problems)
        if username:
            sign_in(page, username)
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not problems, "problems in the browser:\n" + "\n".join(problems)
