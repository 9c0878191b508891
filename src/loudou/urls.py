"""URL routes: the web application at the root, settings (Django admin) under /admin/."""

from typing import Any

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from loudou.core.health import healthz
from loudou.org.signin import AdminSignInForm


class FaviconRedirect(RedirectView):
    """Browsers ask for /favicon.ico whatever the page says; answer with the app's icon.

    The static URL is looked up per request, not when the URL conf is imported: with the
    production (manifest) storage that lookup needs `collectstatic` to have run, and `loudou
    check --deploy` or `migrate` must work before it has."""

    permanent = True

    def get_redirect_url(self, *args: Any, **kwargs: Any) -> str:
        return static("web/favicon.svg")


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/", include("loudou.api.urls")),
    path("favicon.ico", FaviconRedirect.as_view(), name="favicon"),
    path("", include("loudou.web.urls")),
]

# Settings (the Django admin) sign in through the same throttle and messages as the app.
admin.site.login_form = AdminSignInForm
handler404 = "loudou.web.views.errors.not_found"
handler500 = "loudou.web.views.errors.server_error"
