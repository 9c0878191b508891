"""The API half of the permission matrix (`matrix.py`): for every operation of the OpenAPI
document ("METHOD /api/v1/path"), the requests to try and what each role gets: reference data,
accounts and contacts, opportunities and every act on them, targets, analytics, exports, imports,
the audit log and the learned win model; and which world object fills each path parameter.
"""

import datetime as dt
from typing import Any

from tests.trust.matrix_cases import (
    AUDIT_OF_BEIJING,
    AUDIT_READERS,
    BEIJING,
    DEAL_WORK_API,
    FORBIDDEN,
    FUTURE,
    HIDDEN,
    IMPORTER_API,
    INTENT_EVIDENCE,
    MANAGER_API,
    MANAGERS_RUN_API,
    MANAGERS_UPLOAD_API,
    OK,
    REFUSED,
    Case,
    expect,
    with_win_model,
)

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
