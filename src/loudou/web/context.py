"""What every page's frame shows: who is signed in, and how many 立项 requests wait for them."""

from typing import Any

from django.http import HttpRequest

from loudou.pipeline.selectors import approvals_waiting_for


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "nav_is_manager": user.level != "seller",
        "nav_pending_approvals": approvals_waiting_for(user).count(),
    }
