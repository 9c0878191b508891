"""The permission matrix: for every web page and API operation, what each role gets.

This is the ONE table of expected outcomes: `WEB` for the URL conf (kept in `matrix_web.py`),
`API` for the OpenAPI document (kept in `matrix_api.py`), both written with the roles, outcomes
and cases of `matrix_cases.py` and read through this module. `test_permission_matrix.py` walks
the URL conf and the OpenAPI document and fails for any endpoint without an entry here (and for
any entry whose endpoint is gone), then tries every case as every role.

Roles (the `org` fixture of tests/conftest.py):
  anonymous      nobody signed in
  owner          `seller` (Beijing), who owns the Beijing deals and account
  teammate       `teammate` (Beijing), on the project team of the Beijing deals
  other_seller   `sh_seller` (Shanghai)
  manager        `manager` (Beijing branch manager)
  other_manager  `sh_manager` (Shanghai branch manager)
  executive      `executive` (sees everything, edits nothing it does not own)
  admin          `admin`

Outcomes:
  ok         2xx, or a redirect that is not to a sign-in page
  login      web: a redirect to the sign-in page (/login/, or /admin/login/ for the admin);
             API: 401
  hidden     404: the role may not see the object (and the answer names nothing of it)
  forbidden  403: the role sees the object but may not do this
  refused    400/409/422: a service rule refused it (web forms show the error in the form,
             with 400, or 409 in the stage dialog, also when the rule is a permission)

A write that is not `ok` must change nothing in the database; an `ok` write must change it
(unless the case says `writes=False`). Every write runs in a savepoint rolled back after it, so
each role starts from the same world.

Object keys in `args` and bodies refer to the `world` fixture (`matrix_world.py`):
  deal      Beijing, seller's, at "intent"; teammate on its team; a pending 立项 request
            (`approval`), a team member to remove (`member`), a competitor row (`row`), a draft
            quote (`quote`), a queued objection (`objection`), a planned activity (`activity`)
  fresh     Beijing, seller's, at the first stage ("discover"); teammate on its team
  lost      Beijing, seller's, lost (to reopen)
  account   Beijing, seller's; `contact` is a contact of it
  upload    an import upload of the Beijing manager; `run` an import run of his
  web_token an API token of the seller (to revoke)
An `args` value starting with "=" is used as written (`{"stage": "=recognition"}`).
"""

from tests.trust.matrix_api import API, API_PATH_ARGS, LINES, PERIOD, api
from tests.trust.matrix_cases import (
    BEIJING,
    BEIJING_ROLES,
    BJ_SECRETS,
    FORBIDDEN,
    FUTURE,
    HIDDEN,
    LOGIN,
    OK,
    PUBLIC,
    REFUSED,
    ROLES,
    SH_SECRETS,
    SHANGHAI_ROLES,
    SIGNED_IN,
    USERNAMES,
    Case,
    expect,
    get,
    post,
)
from tests.trust.matrix_web import WEB

__all__ = [
    "API",
    "API_PATH_ARGS",
    "BEIJING",
    "BEIJING_ROLES",
    "BJ_SECRETS",
    "FORBIDDEN",
    "FUTURE",
    "HIDDEN",
    "LINES",
    "LOGIN",
    "OK",
    "PERIOD",
    "PUBLIC",
    "REFUSED",
    "ROLES",
    "SHANGHAI_ROLES",
    "SH_SECRETS",
    "SIGNED_IN",
    "USERNAMES",
    "WEB",
    "Case",
    "api",
    "expect",
    "get",
    "post",
]
