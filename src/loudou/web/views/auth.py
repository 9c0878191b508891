"""Sign in and out, the language switch and the user's own preferences."""

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from loudou.core.errors import LoudouError
from loudou.org.services import user_change_password, user_set_preferences
from loudou.org.signin import SignInForm
from loudou.web.views.base import acting_user, login_required, service_errors

COMMON_TIME_ZONES = [
    "Asia/Shanghai",
    "Asia/Hong_Kong",
    "Asia/Taipei",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
    "UTC",
]


class LoginView(auth_views.LoginView):
    """Sign in; a throttled try answers 429 with the form saying how long to wait."""

    template_name = "web/auth/login.html"
    redirect_authenticated_user = True
    form_class = SignInForm

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        # Set on the request by the throttled backend (`org.signin`) when it refused the try.
        wait: dt.timedelta | None = getattr(self.request, "signin_wait", None)
        if wait is not None:
            response.status_code = 429
            response.headers["Retry-After"] = str(int(wait.total_seconds()) + 1)
        return response


def _safe_next(request: HttpRequest, fallback: str = "/") -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


@require_POST
def language_switch(request: HttpRequest) -> HttpResponse:
    """Switch the language: remembered on the user (signed in) and in a cookie (anyone)."""
    language = request.POST.get("language", "")
    if language not in {code for code, _name in settings.LANGUAGES}:
        language = settings.LANGUAGE_CODE
    if request.user.is_authenticated:
        user = acting_user(request)
        user_set_preferences(actor=user, user=user, language=language)
    translation.activate(language)
    response = redirect(_safe_next(request, request.META.get("HTTP_REFERER") or "/"))
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=365 * 24 * 3600,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,  # over https only, like the session's
    )
    return response


@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    """Language (or the browser's) and time zone of the signed-in user."""
    context: dict[str, Any] = {"time_zones": COMMON_TIME_ZONES, "saved": False}
    if request.method == "POST":
        try:
            user = acting_user(request)
            user_set_preferences(
                actor=user,
                user=user,
                language=request.POST.get("language", ""),
                time_zone=request.POST.get("time_zone", ""),
            )
        except LoudouError as error:
            context.update(service_errors(error))
            return render(request, "web/auth/preferences.html", context, status=400)
        response = redirect("web:preferences")
        chosen = acting_user(request).language
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            chosen or "",
            max_age=365 * 24 * 3600 if chosen else 0,
            samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE,
        )
        return response
    return render(request, "web/auth/preferences.html", context)


@login_required
def password_change(request: HttpRequest) -> HttpResponse:
    """Change one's own password; this browser stays signed in, every other session ends."""
    if request.method == "POST":
        user = acting_user(request)
        try:
            user_change_password(
                actor=user,
                user=user,
                current=request.POST.get("current", ""),
                new=request.POST.get("new", ""),
                repeat=request.POST.get("repeat", ""),
            )
        except LoudouError as error:
            return render(request, "web/auth/password.html", service_errors(error), status=400)
        update_session_auth_hash(request, user)
        messages.success(request, _("Your password is changed. Other sessions were signed out."))
        return redirect("web:preferences")
    return render(request, "web/auth/password.html")


urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("language/", language_switch, name="language"),
    path("preferences/", preferences, name="preferences"),
    path("preferences/password/", password_change, name="password-change"),
]
