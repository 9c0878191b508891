"""URL routes: the web application at the root, settings (Django admin) under /admin/."""

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("loudou.api.urls")),
    # Browsers ask for /favicon.ico whatever the page says; answer with the app's icon.
    path("favicon.ico", RedirectView.as_view(url=static("web/favicon.svg"), permanent=True)),
    path("", include("loudou.web.urls")),
]
