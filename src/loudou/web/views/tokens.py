"""The signed-in user's personal API tokens: make one (its secret is shown once), list, revoke."""

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from loudou.api.models import ApiToken
from loudou.api.services import token_create, token_revoke
from loudou.core.errors import LoudouError
from loudou.web.views.base import acting_user, login_required, service_errors


def _page(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    user = acting_user(request)
    context.setdefault("tokens", ApiToken.objects.filter(user=user).order_by("-created_at", "-id"))
    return render(request, "web/tokens/list.html", context, status=status)


@login_required
def api_tokens(request: HttpRequest) -> HttpResponse:
    """List the user's tokens; a POST makes one and shows its secret on this answer only."""
    if request.method != "POST":
        return _page(request, {})
    name = request.POST.get("name", "")
    try:
        token, secret = token_create(actor=acting_user(request), name=name)
    except LoudouError as error:
        return _page(request, {"name": name, **service_errors(error)}, status=400)
    # The secret is rendered into this response and nowhere else: no redirect, no session.
    response = _page(request, {"created": token, "secret": secret}, status=201)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def api_token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke one of the user's tokens; a program using it gets 401 from now on."""
    try:
        token = token_revoke(actor=acting_user(request), token=pk)
    except LoudouError as error:
        return _page(
            request, service_errors(error), status=404 if error.code == "not_found" else 400
        )
    messages.success(request, _("The token “%(name)s” is revoked.") % {"name": token.name})
    return redirect("web:api-tokens")


urlpatterns = [
    path("preferences/tokens/", api_tokens, name="api-tokens"),
    path("preferences/tokens/<int:pk>/revoke/", api_token_revoke, name="api-token-revoke"),
]
