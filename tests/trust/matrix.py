"""The permission matrix: for every web page and API operation, what each role gets.

This is the ONE table of expected outcomes (`WEB` for the URL conf, `API` for the OpenAPI
document). `test_permission_matrix.py` walks the URL conf and the OpenAPI document and fails
for any endpoint without an entry here (and for any entry whose endpoint is gone), then tries
every case as every role.

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

Object keys in `args` and bodies refer to the world built by `build_world` (test module):
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

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ROLES = (
    "anonymous",
    "owner",
    "teammate",
    "other_seller",
    "manager",
    "other_manager",
    "executive",
    "admin",
)
USERNAMES = {
    "owner": "seller",
    "teammate": "teammate",
    "other_seller": "sh_seller",
    "manager": "manager",
    "other_manager": "sh_manager",
    "executive": "executive",
    "admin": "admin",
}
# Who must never read a Shanghai secret (and who must never read a Beijing one).
BEIJING_ROLES = ("owner", "teammate", "manager")
SHANGHAI_ROLES = ("other_seller", "other_manager")
SH_SECRETS = ("绝密", "7654321", "7,654,321")
BJ_SECRETS = ("京密",)

OK, LOGIN, HIDDEN, FORBIDDEN, REFUSED = "ok", "login", "hidden", "forbidden", "refused"

FUTURE = (dt.date.today() + dt.timedelta(days=90)).isoformat()
INTENT_EVIDENCE = {
    "interested": "CIO asked for a second meeting",
    "accepts_packaged": "They will not build in-house",
    "preliminary_requirements": "Requirement list received",
    "contacting_vendors": "They also met two vendors",
}


def expect(default: str, **overrides: str) -> dict[str, str]:
    """Every role gets `default` except anonymous (sent to sign in) and the overrides."""
    row = dict.fromkeys(ROLES, default)
    row["anonymous"] = LOGIN
    row.update(overrides)
    return row


# --- the defaults per kind of endpoint ------------------------------------------------------

PUBLIC = expect(OK, anonymous=OK)
SIGNED_IN = expect(OK)
# A Beijing object: its owner, its project team, its branch's manager, executives and admins
# see it; Shanghai people do not (404, rule 4).
BEIJING = expect(OK, other_seller=HIDDEN, other_manager=HIDDEN)
# Work on a Beijing deal: as reading it, but executives only read (the service refuses them).
# Web forms show that refusal in the form (400), the API answers 403.
DEAL_WORK_WEB = {**BEIJING, "executive": REFUSED}
DEAL_WORK_API = {**BEIJING, "executive": FORBIDDEN}
# A manager's act on a Beijing deal (override a gate, approve 立项, reassign): the Beijing
# manager, executives (managers of every branch) and admins; the seller and the team may not.
MANAGER_API = {**BEIJING, "owner": FORBIDDEN, "teammate": FORBIDDEN}
# Changing the Beijing account: its owner and who manages its branch; not the team.
ACCOUNT_EDIT = {**BEIJING, "teammate": FORBIDDEN}
# Imports: administrators and managers (sellers and executives get 403).
IMPORTER = expect(
    OK, owner=FORBIDDEN, teammate=FORBIDDEN, other_seller=FORBIDDEN, executive=FORBIDDEN
)
# One upload (or run) of the Beijing manager: his alone (even an admin gets 404 for an upload).
MANAGERS_UPLOAD_WEB = {**IMPORTER, "other_manager": HIDDEN, "admin": HIDDEN}
MANAGERS_RUN_WEB = {**IMPORTER, "other_manager": HIDDEN}
# The API hides uploads and runs from those who may not import at all (404, not 403).
MANAGERS_UPLOAD_API = expect(HIDDEN, manager=OK)
MANAGERS_RUN_API = expect(HIDDEN, manager=OK, admin=OK)
IMPORTER_API = expect(FORBIDDEN, manager=OK, other_manager=OK, admin=OK)
# The audit log: managers, executives and administrators (sellers 403); a Beijing object's log
# is hidden from the Shanghai manager.
AUDIT_READERS = expect(FORBIDDEN, manager=OK, other_manager=OK, executive=OK, admin=OK)
AUDIT_OF_BEIJING = {**AUDIT_READERS, "other_manager": HIDDEN}


@dataclass(frozen=True)
class Case:
    """One request to try as every role: method, URL arguments (world keys), query, body."""

    method: str
    expect: dict[str, str]
    args: dict[str, str] = field(default_factory=dict)
    query: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]] | None = None
    body: dict[str, Any] | Callable[[dict[str, Any]], Any] | None = None
    label: str = ""
    writes: bool = True  # an ok write must change the database
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # fresh ids, in the savepoint
    fresh_clients: bool = False  # the request changes who the client is (login, logout)
    multipart: bool = False  # API: a form with files rather than JSON

    def title(self, endpoint: str) -> str:
        start = endpoint if endpoint[:1].isupper() else f"{self.method.upper()} {endpoint}"
        return start + (f" [{self.label}]" if self.label else "")


def get(expect: dict[str, str], label: str = "", **kw: Any) -> Case:
    return Case("get", expect, label=label, **kw)


def post(expect: dict[str, str], body: Any = None, label: str = "", **kw: Any) -> Case:
    return Case("post", expect, body=body, label=label, **kw)


def exports(expect: dict[str, str], **query: Any) -> list[Case]:
    """The page's CSV and XLSX downloads (with `query`)."""
    return [get(expect, f"export {fmt}", query={**query, "export": fmt}) for fmt in ("csv", "xlsx")]


def probes(expect: dict[str, str], search: str = "q") -> list[Case]:
    """A search for the Shanghai secret and filters naming the Shanghai branch and seller: the
    answer may be empty or ignore the filter, but must not name a Shanghai object."""
    return [
        get(expect, "search", query={search: "XYZ"}),
        get(
            expect,
            "filter on Shanghai",
            query=lambda w: {"branch": w["shanghai"], "owner": w["sh_seller"]},
        ),
    ]


# --- web: url name (or, unnamed, the route) → cases -------------------------------------------

D = {"pk": "deal"}
F = {"pk": "fresh"}


def _move(to_stage: str, version: str, **extra: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda w: {"to_stage": to_stage, "version": w[version], "from": "page", **extra}


def _accept_discover(w: dict[str, Any]) -> dict[str, Any]:
    """The model page's accept form: the first stage's default probability set to 12 %."""
    return {"playbook": w["playbook_key"], "accept": ["discover"], "probability_discover": "12"}


def with_win_model(w: dict[str, Any]) -> dict[str, Any]:
    """A stored win model of the world's playbook (one that fell back to the stage defaults):
    training a real one needs hundreds of closed deals."""
    from loudou.playbooks.models import Playbook
    from tests.api.test_learning_api import stored_model

    stored_model(Playbook.objects.get(key=w["playbook_key"], is_current=True))
    return {}


WEB: dict[str, list[Case]] = {
    # Not signed in: the sign-in page, sign-out, the language switch.
    "web:login": [
        get(PUBLIC),
        post(
            PUBLIC,
            {"username": "seller", "password": "loudou-test-pw-1"},
            writes=False,
            fresh_clients=True,
        ),
    ],
    # Signing out lands on the sign-in page, whoever asks.
    "web:logout": [post(expect(LOGIN), writes=False, fresh_clients=True)],
    "web:language": [post(PUBLIC, {"language": "zh-hans"}, writes=False, fresh_clients=True)],
    "web:preferences": [
        get(SIGNED_IN),
        post(SIGNED_IN, {"language": "en", "time_zone": "Europe/Berlin"}, fresh_clients=True),
    ],
    "web:password-change": [
        get(SIGNED_IN),
        post(
            SIGNED_IN,
            {
                "current": "loudou-test-pw-1",
                "new": "Lantern-Orchard-2027!",
                "repeat": "Lantern-Orchard-2027!",
            },
            fresh_clients=True,
        ),
    ],
    "favicon.ico": [get(PUBLIC)],
    # The Django admin (settings): staff only; everyone else is sent to its own sign-in.
    "admin/": [get(expect(LOGIN, admin=OK))],
    # The API's own pages (the operations are in API below); the docs are public.
    "loudou-api-v1:openapi-json": [get(PUBLIC)],
    "loudou-api-v1:openapi-view": [get(PUBLIC)],
    "loudou-api-v1:api-root": [get(expect(HIDDEN, anonymous=HIDDEN))],  # nothing at /api/v1/
    "api/^(?P<rest>.*)$": [get(expect(HIDDEN, anonymous=HIDDEN), args={"rest": "=v2/nothing"})],
    # Lists and reports: every signed-in user, each reading what they may see.
    "web:dashboard": [get(SIGNED_IN), get(SIGNED_IN, "team view", query={"view": "team"})],
    "web:board": [get(SIGNED_IN), *exports(SIGNED_IN), *probes(SIGNED_IN)],
    "web:board-more": [
        get(SIGNED_IN, args={"stage": "=recognition"}),
        get(
            SIGNED_IN,
            "filter on Shanghai",
            args={"stage": "=recognition"},
            query=lambda w: {"branch": w["shanghai"], "total": 5},
        ),
    ],
    "web:opportunity-list": [
        get(SIGNED_IN),
        get(SIGNED_IN, "all statuses", query={"status": "all"}),
        *exports(SIGNED_IN, status="all"),
        *probes(SIGNED_IN),
    ],
    "web:account-list": [get(SIGNED_IN), *exports(SIGNED_IN), *probes(SIGNED_IN)],
    "web:approvals": [
        get(SIGNED_IN),
        *[c for which in ("waiting", "decided", "mine") for c in exports(SIGNED_IN, list=which)],
    ],
    "web:funnel": [
        get(SIGNED_IN),
        get(SIGNED_IN, "stage drill-down", query={"stage": "recognition"}),
        get(
            SIGNED_IN,
            "drill-down on Shanghai",
            query=lambda w: {"stage": "recognition", "branch": w["shanghai"]},
        ),
        *exports(SIGNED_IN, stage="recognition"),
    ],
    "web:funnel-deals": [
        get(SIGNED_IN, query={"stage": "recognition"}),
        get(
            SIGNED_IN,
            "filter on Shanghai",
            query=lambda w: {"stage": "recognition", "owner": w["sh_seller"]},
        ),
        *exports(SIGNED_IN, stage="recognition"),
    ],
    "web:funnel-conversion": [get(SIGNED_IN), *probes(SIGNED_IN)[1:]],
    "web:analytics": [get(SIGNED_IN)],
    "web:analytics-conversion": [get(SIGNED_IN), *probes(SIGNED_IN)[1:]],
    "web:analytics-velocity": [get(SIGNED_IN), *probes(SIGNED_IN)[1:]],
    "web:analytics-stalled": [get(SIGNED_IN), *exports(SIGNED_IN), *probes(SIGNED_IN)[1:]],
    "web:analytics-flow": [get(SIGNED_IN), *probes(SIGNED_IN)[1:]],
    "web:analytics-forecast": [
        get(SIGNED_IN),
        get(SIGNED_IN, "plan", query={"target": "5000000"}),
        *probes(SIGNED_IN)[1:],
    ],
    # The win model page: aggregates for everyone; training and accepting for administrators.
    "web:analytics-model": [
        get(SIGNED_IN, "no model yet"),
        get(SIGNED_IN, "a model", prepare=with_win_model),
    ],
    "web:analytics-model-train": [
        post(
            expect(FORBIDDEN, admin=REFUSED),
            lambda w: {"playbook": w["playbook_key"]},
            "too little history",
        ),
    ],
    "web:analytics-model-accept": [
        post(
            expect(FORBIDDEN, admin=HIDDEN),
            _accept_discover,
            "no model yet",
        ),
        post(
            expect(FORBIDDEN, admin=OK),
            _accept_discover,
            "a model",
            prepare=with_win_model,
        ),
    ],
    "web:opportunity-win-probability": [
        get(BEIJING, "no model yet", args=D),
        get(BEIJING, "a model", args=D, prepare=with_win_model),
    ],
    # The opportunity page and its section actions.
    "web:opportunity-detail": [get(BEIJING, args=D)],
    "web:opportunity-move": [
        post(
            DEAL_WORK_WEB,
            _move(
                "intent",
                "fresh_version",
                **{f"evidence.intent.{k}": v for k, v in INTENT_EVIDENCE.items()},
            ),
            "advance",
            args=F,
        ),
        # Past a missing 立项 with a reason: managers of the branch only (the dialog says so).
        post(
            {**DEAL_WORK_WEB, "owner": REFUSED, "teammate": REFUSED},
            _move("project", "deal_version", override_reason="CEO sponsor"),
            "override a gate",
            args=D,
        ),
        post(
            {**DEAL_WORK_WEB, "owner": REFUSED, "teammate": REFUSED},
            _move("__won__", "fresh_version", override_reason="Signed in one go"),
            "win with override",
            args=F,
        ),
        post(
            DEAL_WORK_WEB,
            _move("discover", "deal_version", reason="Requirement withdrawn"),
            "regress",
            args=D,
        ),
        post(DEAL_WORK_WEB, _move("__lost__", "deal_version", reason="price"), "lose", args=D),
        post(
            DEAL_WORK_WEB,
            _move("__reopen__", "lost_version", reason="They came back"),
            "reopen",
            args={"pk": "lost"},
        ),
    ],
    "web:opportunity-evidence": [
        post(DEAL_WORK_WEB, {"criterion": "recognises_us", "note": "Good demo"}, args=D)
    ],
    "web:opportunity-team-add": [
        post(
            DEAL_WORK_WEB,
            lambda w: {"user": w["tj_seller"], "role": "presales_consultant"},
            args=D,
        )
    ],
    "web:opportunity-team-remove": [post(DEAL_WORK_WEB, args={"pk": "deal", "member": "member"})],
    "web:opportunity-approval": [
        post(
            DEAL_WORK_WEB,
            {
                "requirement": "Group finance",
                "budget": "1200000",
                "timeline": "Q1",
                "selection_team": "CIO",
            },
            args=F,
        )
    ],
    # Only the requester withdraws; the others see the refusal in the section.
    "web:opportunity-approval-withdraw": [
        post(
            expect(REFUSED, owner=OK, other_seller=HIDDEN, other_manager=HIDDEN),
            args={"pk": "deal", "approval": "approval"},
        )
    ],
    "web:opportunity-competitor-add": [post(DEAL_WORK_WEB, {"name": "Inspur"}, args=D)],
    "web:opportunity-competitor-edit": [
        post(DEAL_WORK_WEB, {"notes": "Cheaper", "active": "1"}, args={"pk": "deal", "row": "row"})
    ],
    "web:opportunity-key-date": [
        post(DEAL_WORK_WEB, {"kind": "negotiation", "planned": FUTURE}, args=D)
    ],
    "web:opportunity-quote-add": [
        post(
            DEAL_WORK_WEB,
            {
                "kind": "preliminary",
                "category": "software",
                "description": "Licences",
                "quantity": "1",
                "unit_price": "500000",
                "discount_percent": "0",
            },
            args=D,
        )
    ],
    "web:opportunity-quote-line": [post(BEIJING, {"category": "services"}, args=D, writes=False)],
    "web:opportunity-quote-submit": [post(DEAL_WORK_WEB, args={"pk": "deal", "quote": "quote"})],
    "web:opportunity-objection-add": [post(DEAL_WORK_WEB, {"text": "Too dear"}, args=D)],
    "web:opportunity-objection-answer": [
        post(DEAL_WORK_WEB, {"answer": "Phased"}, args={"pk": "deal", "objection": "objection"})
    ],
    "web:opportunity-activity-add": [
        post(DEAL_WORK_WEB, {"kind": "call", "subject": "Call the CIO", "due_on": FUTURE}, args=D)
    ],
    "web:opportunity-activity-complete": [
        post(DEAL_WORK_WEB, {"outcome": "Done"}, args={"pk": "deal", "activity": "activity"})
    ],
    # The opportunity form.
    "web:opportunity-create": [
        get(SIGNED_IN),
        get(SIGNED_IN, "for a Shanghai account", query=lambda w: {"account": w["sh_account"]}),
        post(
            expect(OK, other_seller=REFUSED, other_manager=REFUSED),
            lambda w: {
                "account": w["account"],
                "name": "New deal",
                "amount": "100000",
                "close_date": FUTURE,
                "evidence.discover.need_found": "CFO said so",
                "source": "Referral",
            },
        ),
        # For someone else: managers of that person's branch only.
        post(
            expect(
                OK, owner=REFUSED, teammate=REFUSED, other_seller=REFUSED, other_manager=REFUSED
            ),
            lambda w: {
                "account": w["account"],
                "owner": w["teammate"],
                "name": "New deal",
                "amount": "100000",
                "close_date": FUTURE,
                "evidence.discover.need_found": "CFO said so",
                "source": "Referral",
            },
            "for the teammate",
        ),
    ],
    "web:opportunity-edit": [
        get(BEIJING, args=D),
        post(
            DEAL_WORK_WEB,
            lambda w: {
                "version": w["deal_version"],
                "name": "京密商机-改",
                "amount": "1200000",
                "close_date": FUTURE,
                "currency": "CNY",
            },
            args=D,
        ),
    ],
    # Accounts.
    "web:account-create": [
        get(SIGNED_IN),
        post(SIGNED_IN, {"name": "新客户集团", "organisations_count": "1"}),
    ],
    "web:account-detail": [
        get(BEIJING, args={"pk": "account"}),
        *[
            get(BEIJING, f"{c.label}", args={"pk": "account"}, query=c.query)
            for c in exports(BEIJING) + exports(BEIJING, list="contacts")
        ],
    ],
    "web:account-edit": [
        get(ACCOUNT_EDIT, args={"pk": "account"}),
        post(
            ACCOUNT_EDIT,
            {"name": "京密客户集团-改", "organisations_count": "12"},
            args={"pk": "account"},
        ),
    ],
    "web:account-qualify": [
        post(BEIJING, args={"pk": "account"}),
        post(
            {**BEIJING, "owner": FORBIDDEN, "teammate": FORBIDDEN},
            {"override": "yes", "reason": "Strategic"},
            "override the verdict",
            args={"pk": "account"},
        ),
    ],
    "web:account-contact-create": [
        get(ACCOUNT_EDIT, args={"pk": "account"}),
        post(ACCOUNT_EDIT, {"name": "李工"}, args={"pk": "account"}),
    ],
    "web:account-contact-edit": [
        get(ACCOUNT_EDIT, args={"pk": "account", "contact_pk": "contact"}),
        post(
            ACCOUNT_EDIT,
            {"name": "京密联系人", "title": "CTO"},
            args={"pk": "account", "contact_pk": "contact"},
        ),
    ],
    # 立项 decisions: a manager of the branch (executives and admins manage every branch);
    # the seller who asked may not approve it (403), a Shanghai manager does not see it (404).
    "web:approval-decide": [
        post(
            {**BEIJING, "owner": FORBIDDEN, "teammate": FORBIDDEN},
            {"decision": "approve", "comment": "Go"},
            args={"pk": "approval"},
        )
    ],
    "web:approval-withdraw": [
        post(
            expect(FORBIDDEN, owner=OK, other_seller=HIDDEN, other_manager=HIDDEN),
            args={"pk": "approval"},
        )
    ],
    # Personal API tokens: one's own only.
    "web:api-tokens": [get(SIGNED_IN), post(SIGNED_IN, {"name": "My script"})],
    "web:api-token-revoke": [
        post(expect(HIDDEN, owner=OK, admin=OK), args={"pk": "web_token"}),
    ],
    # Imports: managers and administrators; an upload or a run is its importer's.
    "web:import": [
        get(IMPORTER),
        post(IMPORTER, lambda w: w["upload_form"](), "upload", writes=False),
    ],
    "web:import-template": [get(IMPORTER)],
    "web:import-run": [get(MANAGERS_RUN_WEB, args={"pk": "run"})],
    "web:import-run-progress": [get(MANAGERS_RUN_WEB, args={"pk": "run"})],
    "web:import-review": [get(MANAGERS_UPLOAD_WEB, args={"token": "upload"})],
    "web:import-problems": [get(MANAGERS_UPLOAD_WEB, args={"token": "upload"})],
    "web:import-mapping": [get(MANAGERS_UPLOAD_WEB, args={"token": "upload"})],
    "web:import-check": [
        post(MANAGERS_UPLOAD_WEB, {"currency": "CNY"}, args={"token": "upload"}, writes=False)
    ],
    "web:import-confirm": [
        post(
            MANAGERS_UPLOAD_WEB, args={"token": "new_upload"}, prepare=lambda w: w["make_upload"]()
        )
    ],
    "web:import-discard": [
        post(
            MANAGERS_UPLOAD_WEB,
            args={"token": "new_upload"},
            prepare=lambda w: w["make_upload"](),
            writes=False,
        )
    ],
    # The audit log: managers (their branches' events), executives and admins; sellers 403.
    # An object's log: 404 for a manager who may not see the object.
    "web:audit": [
        get(AUDIT_READERS),
        *exports(AUDIT_READERS),
        get(AUDIT_READERS, "search", query={"q": "XYZ"}),
        get(
            AUDIT_READERS,
            "filter on the Shanghai seller",
            query=lambda w: {"actor": w["sh_seller"]},
        ),
    ],
    "web:audit-object": [
        get(AUDIT_OF_BEIJING, "opportunity", args={"kind": "=opportunity", "pk": "deal"}),
        get(AUDIT_OF_BEIJING, "account", args={"kind": "=account", "pk": "account"}),
        *[
            get(
                AUDIT_OF_BEIJING,
                c.label,
                args={"kind": "=opportunity", "pk": "deal"},
                query=c.query,
            )
            for c in exports(AUDIT_OF_BEIJING)
        ],
    ],
    # The health check for load balancers and monitors: public, no session needed.
    "healthz": [get(PUBLIC)],
}


# --- API: "METHOD /api/v1/path" → cases ---------------------------------------------------------

OPP = "/api/v1/opportunities/{opportunity_id}"
LINES = [{"category": "software", "description": "Licences", "unit_price": "100000"}]


def api(expect: dict[str, str], body: Any = None, label: str = "", **kw: Any) -> Case:
    """An API case; the method comes from the table's key."""
    return Case("", expect, body=body, label=label, **kw)


def api_probes(expect: dict[str, str], **names: str) -> list[Case]:
    """A search for the Shanghai secret and filters on the Shanghai branch and seller; `names`
    maps the roles of the probe (q, branch, owner) to the operation's parameter names."""
    cases = []
    if "q" in names:
        cases.append(api(expect, label="search", query={names["q"]: "XYZ"}))
    cases.append(
        api(
            expect,
            label="filter on Shanghai",
            query=lambda w: {
                k: v
                for k, v in {
                    names.get("branch", "branch"): "sh",
                    names.get("owner", ""): w["sh_seller"],
                }.items()
                if k
            },
        )
    )
    return cases


SIGNED_IN_API = expect(OK)
TODAY = dt.date.today()
PERIOD = {"period": f"{TODAY.year}Q{(TODAY.month - 1) // 3 + 1}", "simulations": 200}
FLOW = {"from": (TODAY - dt.timedelta(days=90)).isoformat(), "to": TODAY.isoformat()}


def analytics_probes(query: dict[str, Any] | None = None) -> list[Case]:
    """The report on the Shanghai branch, and on the Shanghai seller (by user name)."""
    return [
        api(SIGNED_IN_API, label="on Shanghai", query={**(query or {}), "branch": "sh"}),
        api(
            SIGNED_IN_API,
            label="on the Shanghai seller",
            query={**(query or {}), "owner": "sh_seller"},
        ),
    ]


BEIJING_API = BEIJING
EXPORTS_API = [
    api(SIGNED_IN_API, label="csv"),
    api(SIGNED_IN_API, label="xlsx", query={"format": "xlsx"}),
]


ADMIN_API = expect(FORBIDDEN, admin=OK)

API: dict[str, list[Case]] = {
    "GET /api/v1/me": [api(SIGNED_IN_API)],
    "GET /api/v1/users": [api(SIGNED_IN_API)],
    "GET /api/v1/branches": [api(SIGNED_IN_API)],
    "GET /api/v1/roles": [api(SIGNED_IN_API)],
    "GET /api/v1/lost-reasons": [api(SIGNED_IN_API)],
    "GET /api/v1/industries": [api(SIGNED_IN_API)],
    "GET /api/v1/playbooks": [api(SIGNED_IN_API)],
    "GET /api/v1/playbooks/{key}": [api(SIGNED_IN_API)],
    # Accounts and contacts.
    "GET /api/v1/accounts": [
        api(SIGNED_IN_API),
        *api_probes(SIGNED_IN_API, q="q", owner="owner_id"),
    ],
    "POST /api/v1/accounts": [api(SIGNED_IN_API, {"name": "新客户集团"})],
    "GET /api/v1/accounts/{account_id}": [api(BEIJING_API)],
    "PATCH /api/v1/accounts/{account_id}": [
        api({**BEIJING_API, "teammate": FORBIDDEN}, {"it_need": "ERP"})
    ],
    "GET /api/v1/accounts/{account_id}/contacts": [api(BEIJING_API)],
    "POST /api/v1/accounts/{account_id}/contacts": [
        api({**BEIJING_API, "teammate": FORBIDDEN}, {"name": "李工"})
    ],
    "PATCH /api/v1/accounts/{account_id}/contacts/{contact_id}": [
        api({**BEIJING_API, "teammate": FORBIDDEN}, {"title": "CTO"})
    ],
    "GET /api/v1/contacts": [
        api(SIGNED_IN_API),
        api(SIGNED_IN_API, label="search", query={"q": "XYZ"}),
        api(
            BEIJING_API,
            label="of the Beijing account",
            query=lambda w: {"account_id": w["account"]},
        ),
    ],
    # Opportunities.
    "GET /api/v1/opportunities": [
        api(SIGNED_IN_API),
        api(SIGNED_IN_API, label="cursor", query={"cursor": ""}),
        *api_probes(SIGNED_IN_API, q="q", owner="owner_id"),
    ],
    "POST /api/v1/opportunities": [
        api(
            expect(OK, other_seller=REFUSED, other_manager=REFUSED),
            lambda w: {
                "account_id": w["account"],
                "name": "New deal",
                "amount": "100000",
                "close_date": FUTURE,
                "evidence": {"need_found": "CFO said so"},
                "source": "Referral",
            },
        ),
        api(
            # (naming oneself as the owner is fine: the teammate creates his own deal)
            expect(OK, owner=FORBIDDEN, other_seller=REFUSED, other_manager=REFUSED),
            lambda w: {
                "account_id": w["account"],
                "owner_id": w["teammate"],
                "name": "New deal",
                "amount": "100000",
                "close_date": FUTURE,
                "evidence": {"need_found": "CFO said so"},
                "source": "Referral",
            },
            "for the teammate",
        ),
    ],
    f"GET {OPP}": [api(BEIJING_API)],
    f"PATCH {OPP}": [
        api(DEAL_WORK_API, lambda w: {"expected_version": w["deal_version"], "amount": "1200000"})
    ],
    f"POST {OPP}/advance": [
        api(
            DEAL_WORK_API,
            {"to_stage": "intent", "evidence": INTENT_EVIDENCE},
            "advance",
            args={"opportunity_id": "fresh"},
        ),
        api(
            MANAGER_API | {"executive": FORBIDDEN},
            {"to_stage": "project", "override_reason": "CEO sponsor"},
            "override a gate",
        ),
        api(
            expect(REFUSED, other_seller=HIDDEN, other_manager=HIDDEN, executive=FORBIDDEN),
            {"to_stage": "project"},
            "gate refused",
        ),
    ],
    f"POST {OPP}/regress": [api(DEAL_WORK_API, {"to_stage": "discover", "reason": "x"})],
    f"POST {OPP}/win": [
        api(
            MANAGER_API | {"executive": FORBIDDEN},
            {"override_reason": "Signed in one go"},
            "with override",
            args={"opportunity_id": "fresh"},
        ),
    ],
    f"POST {OPP}/lose": [api(DEAL_WORK_API, {"reason": "price"})],
    f"POST {OPP}/reopen": [
        api(DEAL_WORK_API, {"reason": "They came back"}, args={"opportunity_id": "lost"})
    ],
    # Owners change by a manager of both branches; never by the seller or the team.
    f"POST {OPP}/reassign": [
        api(MANAGER_API, lambda w: {"owner_id": w["teammate"], "reason": "Holiday"}),
        api(
            MANAGER_API | {"manager": FORBIDDEN},
            lambda w: {"owner_id": w["sh_seller"], "reason": "Moved"},
            "to another branch's seller",
        ),
    ],
    f"POST {OPP}/evidence": [api(DEAL_WORK_API, {"criterion": "recognises_us", "note": "x"})],
    f"GET {OPP}/criteria": [api(BEIJING_API)],
    f"GET {OPP}/history": [api(BEIJING_API)],
    f"GET {OPP}/approvals": [api(BEIJING_API)],
    f"POST {OPP}/approvals": [
        api(
            DEAL_WORK_API,
            {"requirement": "r", "budget": "100", "timeline": "t", "selection_team": "s"},
            args={"opportunity_id": "fresh"},
        )
    ],
    f"POST {OPP}/approvals/{{approval_id}}/withdraw": [
        api(expect(FORBIDDEN, owner=OK, other_seller=HIDDEN, other_manager=HIDDEN))
    ],
    f"POST {OPP}/approvals/{{approval_id}}/decision": [
        api(MANAGER_API, {"approve": True, "comment": "Go"}),
        api(
            {**MANAGER_API, "manager": REFUSED, "executive": REFUSED, "admin": REFUSED},
            {"approve": False},
            "reject without a reason",
        ),
    ],
    f"GET {OPP}/team": [api(BEIJING_API)],
    f"POST {OPP}/team": [
        api(DEAL_WORK_API, lambda w: {"user_id": w["tj_seller"], "role": "presales_consultant"})
    ],
    f"DELETE {OPP}/team/{{member_id}}": [api(DEAL_WORK_API)],
    f"GET {OPP}/competitors": [api(BEIJING_API)],
    f"POST {OPP}/competitors": [api(DEAL_WORK_API, {"name": "Inspur"})],
    f"PATCH {OPP}/competitors/{{row_id}}": [api(DEAL_WORK_API, {"notes": "x"})],
    f"GET {OPP}/key-dates": [api(BEIJING_API)],
    f"POST {OPP}/key-dates": [api(DEAL_WORK_API, {"kind": "negotiation", "planned": FUTURE})],
    f"GET {OPP}/objections": [api(BEIJING_API)],
    f"POST {OPP}/objections": [api(DEAL_WORK_API, {"text": "Too dear"})],
    f"POST {OPP}/objections/{{objection_id}}/answer": [api(DEAL_WORK_API, {"answer": "Phased"})],
    f"GET {OPP}/quotes": [api(BEIJING_API)],
    f"POST {OPP}/quotes": [api(DEAL_WORK_API, {"kind": "preliminary", "lines": LINES})],
    f"POST {OPP}/quotes/{{quote_id}}/submit": [api(DEAL_WORK_API)],
    f"GET {OPP}/activities": [api(BEIJING_API)],
    f"POST {OPP}/activities": [
        api(DEAL_WORK_API, {"kind": "call", "subject": "Call the CIO", "due_on": FUTURE})
    ],
    f"POST {OPP}/activities/{{activity_id}}/complete": [api(DEAL_WORK_API, {"outcome": "Done"})],
    "GET /api/v1/approvals": [api(SIGNED_IN_API)],
    "GET /api/v1/activities": [api(SIGNED_IN_API), *api_probes(SIGNED_IN_API, owner="owner_id")],
    # Targets: read your own (and what you manage); set by a manager for what he manages, by an
    # admin for anyone. A seller may set none, not even his own.
    "GET /api/v1/targets": [api(SIGNED_IN_API)],
    "POST /api/v1/targets": [
        api(
            expect(FORBIDDEN, manager=OK, admin=OK, executive=OK),
            lambda w: {
                "scope": "user",
                "user_id": w["seller"],
                "month": "2027-01",
                "amount": "1000000",
            },
            "the seller's",
        ),
        api(
            expect(FORBIDDEN, admin=OK),
            {"scope": "company", "month": "2027-01", "amount": "90000000"},
            "the company's",
        ),
    ],
    # Analytics: everyone, each over what they may see.
    "GET /api/v1/analytics/funnel": [api(SIGNED_IN_API), *analytics_probes()],
    "GET /api/v1/analytics/conversion": [api(SIGNED_IN_API), *analytics_probes()],
    "GET /api/v1/analytics/velocity": [api(SIGNED_IN_API), *analytics_probes()],
    "GET /api/v1/analytics/stalled": [api(SIGNED_IN_API), *analytics_probes()],
    "GET /api/v1/analytics/flow": [
        api(SIGNED_IN_API, query=FLOW),
        *analytics_probes(FLOW),
    ],
    "GET /api/v1/analytics/forecast": [
        api(SIGNED_IN_API, query=PERIOD),
        *analytics_probes(PERIOD),
    ],
    "GET /api/v1/analytics/plan": [
        api(SIGNED_IN_API, query={**PERIOD, "target": "5000000"}),
        *analytics_probes({**PERIOD, "target": "5000000"}),
    ],
    "GET /api/v1/analytics/targets": [
        api(SIGNED_IN_API, query=PERIOD),
        *analytics_probes(PERIOD),
    ],
    # Exports: every row the caller may see, as CSV or XLSX.
    "GET /api/v1/exports/opportunities": [*EXPORTS_API, *api_probes(SIGNED_IN_API, q="q")],
    "GET /api/v1/exports/accounts": [*EXPORTS_API, *api_probes(SIGNED_IN_API, q="q")],
    "GET /api/v1/exports/contacts": [*EXPORTS_API],
    "GET /api/v1/exports/activities": [*EXPORTS_API],
    "GET /api/v1/exports/approvals": [*EXPORTS_API],
    "GET /api/v1/exports/stalled": [*EXPORTS_API],
    # Imports.
    "POST /api/v1/imports": [
        api(IMPORTER_API, lambda w: w["upload_form"](), "upload", multipart=True, writes=False)
    ],
    "GET /api/v1/imports/template.xlsx": [api(SIGNED_IN_API)],
    "GET /api/v1/imports/{token}": [api(MANAGERS_UPLOAD_API)],
    "PUT /api/v1/imports/{token}/mapping": [api(MANAGERS_UPLOAD_API, {}, writes=False)],
    "POST /api/v1/imports/{token}/confirm": [
        api(MANAGERS_UPLOAD_API, args={"token": "new_upload"}, prepare=lambda w: w["make_upload"]())
    ],
    "GET /api/v1/import-runs": [api(IMPORTER_API)],
    "GET /api/v1/import-runs/{run_id}": [api(MANAGERS_RUN_API)],
    "GET /api/v1/audit-events": [
        api(AUDIT_READERS),
        api(AUDIT_READERS, label="search", query={"q": "XYZ"}),
        api(
            AUDIT_READERS,
            label="filter on the Shanghai seller",
            query=lambda w: {"actor_id": w["sh_seller"]},
        ),
        api(
            AUDIT_OF_BEIJING,
            label="of the Beijing deal",
            query=lambda w: {"subject_kind": "opportunity", "subject_id": w["deal"]},
        ),
    ],
    # Learned win probabilities: the model and a deal's explained probability are read by
    # whoever may see them (404 while no model is trained); training one and accepting stage
    # probabilities into the playbook are for administrators.
    "GET /api/v1/win-models/{playbook_key}": [
        api(expect(HIDDEN), label="no model yet"),
        api(SIGNED_IN_API, label="a model", prepare=with_win_model),
    ],
    "POST /api/v1/win-models/{playbook_key}/train": [
        # The world has too few closed deals to learn from: the administrator is refused (422).
        api(expect(FORBIDDEN, admin=REFUSED), {}),
    ],
    "POST /api/v1/win-models/{playbook_key}/accept-probabilities": [
        api(ADMIN_API, {"probabilities": {"discover": 12}}),
        api(
            expect(FORBIDDEN, admin=REFUSED),
            {"probabilities": {"closed": 90}},
            "not an open stage",
        ),
    ],
    f"GET {OPP}/win-probability": [
        api(expect(HIDDEN), label="no model yet"),
        api(BEIJING_API, label="a model", prepare=with_win_model),
    ],
}

# Path parameters of the API → world keys (a case's `args` overrides them).
API_PATH_ARGS = {
    "opportunity_id": "deal",
    "account_id": "account",
    "contact_id": "contact",
    "approval_id": "approval",
    "member_id": "member",
    "row_id": "row",
    "objection_id": "objection",
    "quote_id": "quote",
    "activity_id": "activity",
    "key": "playbook_key",
    "playbook_key": "playbook_key",
    "token": "upload",
    "run_id": "run",
}
