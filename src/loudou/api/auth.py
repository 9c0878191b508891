"""Who calls the API: a personal API token (`Authorization: Bearer`) or the browser's session
(with the CSRF token on writes). Both answer with the user; the caller's language follows."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation.trans_real import parse_accept_lang_header
from ninja.errors import AuthenticationError, HttpError
from ninja.security import HttpBearer
from ninja.security.apikey import APIKeyCookie
from ninja.utils import check_csrf

from loudou.api.services import token_authenticate


class ApiRequest(HttpRequest):
    """A request the API authenticated: `auth` is the calling user."""

    auth: Any


def caller_language(request: HttpRequest, user: Any) -> str | None:
    """The language the caller reads: an explicit Accept-Language header first, then the user's
    preference; None leaves the installation's default (or the language cookie)."""
    header = request.META.get("HTTP_ACCEPT_LANGUAGE", "")
    for code, _quality in parse_accept_lang_header(header):
        if code == "*":
            break
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return getattr(user, "language", "") or None


def _signed_in(request: HttpRequest, user: Any) -> Any:
    """Make `user` the request's user and switch to the caller's language."""
    request.user = user
    language = caller_language(request, user)
    if language:
        translation.activate(language)
        request.LANGUAGE_CODE = language
    if not hasattr(user, "_managed_memo"):
        user._managed_memo = {}  # see org.access.managed_branch_ids
    return user


class TokenAuth(HttpBearer):
    """`Authorization: Bearer <secret>` with a personal API token."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        found = token_authenticate(token.strip())
        if found is None:
            # A token that was sent but does not work is refused outright, never ignored in
            # favour of a session: the client must learn its token is revoked.
            raise AuthenticationError(
                401,
                _("This API token is not valid: it is unknown, revoked or its user is inactive."),
            )
        return _signed_in(request, found.user)


class SessionAuth(APIKeyCookie):
    """The signed-in browser session; writes must carry the CSRF token."""

    param_name = settings.SESSION_COOKIE_NAME

    def _get_key(self, request: HttpRequest) -> str | None:
        # Without a session cookie there is no session to protect: answer 401, not a CSRF error.
        key = request.COOKIES.get(self.param_name)
        if not key:
            return None
        if self.csrf and check_csrf(request) is not None:
            raise HttpError(403, "CSRF check failed")
        return key

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = getattr(request, "user", None)
        if key is None or user is None or not user.is_authenticated or not user.is_active:
            return None
        real = getattr(user, "_wrapped", user)  # the lazy proxy cannot be audited as an object
        return _signed_in(request, real)


token_auth = TokenAuth()
session_auth = SessionAuth()
