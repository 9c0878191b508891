"""The web half of the permission matrix (`matrix.py`): for every URL name of the URL conf
(or, unnamed, its route), the pages and forms to try and what each role gets: sign-in and
preferences, the board, lists and reports, the opportunity page and its sections, the deal and
account forms, 立项 decisions, API tokens, imports and the audit log.
"""

from collections.abc import Callable
from typing import Any

from tests.trust.matrix_cases import (
    ACCOUNT_EDIT,
    AUDIT_OF_BEIJING,
    AUDIT_READERS,
    BEIJING,
    DEAL_WORK_WEB,
    FORBIDDEN,
    FUTURE,
    HIDDEN,
    IMPORTER,
    INTENT_EVIDENCE,
    LOGIN,
    MANAGERS_RUN_WEB,
    MANAGERS_UPLOAD_WEB,
    OK,
    PUBLIC,
    REFUSED,
    SIGNED_IN,
    Case,
    expect,
    exports,
    get,
    post,
    probes,
    with_win_model,
)

D = {"pk": "deal"}
F = {"pk": "fresh"}


def _move(to_stage: str, version: str, **extra: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda w: {"to_stage": to_stage, "version": w[version], "from": "page", **extra}


def _accept_discover(w: dict[str, Any]) -> dict[str, Any]:
    """The model page's accept form: the first stage's default probability set to 12 %."""
    return {"playbook": w["playbook_key"], "accept": ["discover"], "probability_discover": "12"}


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
