"""The web application's routes, gathered from each page's module (namespace "web")."""

from loudou.web.views import (
    accounts,
    analytics,
    approvals,
    audit,
    auth,
    board,
    dashboard,
    forecast,
    funnel,
    imports,
    learning,
    moves,
    opportunity,
    opportunity_form,
    tokens,
)

app_name = "web"

urlpatterns = [
    *auth.urlpatterns,
    *dashboard.urlpatterns,
    *board.urlpatterns,
    *moves.urlpatterns,
    *opportunity.urlpatterns,
    *opportunity_form.urlpatterns,
    *accounts.urlpatterns,
    *approvals.urlpatterns,
    *funnel.urlpatterns,
    *analytics.urlpatterns,
    *forecast.urlpatterns,
    *learning.urlpatterns,
    *tokens.urlpatterns,
    *imports.urlpatterns,
    *audit.urlpatterns,
]
