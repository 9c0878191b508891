"""The Django admin as a whole: every loudou model is registered and each changelist and change
page answers, in English and Chinese, with as many queries for more rows; the site is titled and
speaks Chinese by default; a seller is sent to sign in; append-only rows stay untouched."""

from typing import Any

import pytest
from django.contrib import admin
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from loudou.core.models import AuditEvent
from loudou.customers.models import AccountQualification
from loudou.pipeline.models import CriterionEvidence, GateOverride, Opportunity, OpportunityHistory
from tests.admin.conftest import admin_url, walk_a_deal

APPEND_ONLY = [
    AuditEvent,
    AccountQualification,
    OpportunityHistory,
    CriterionEvidence,
    GateOverride,
]


# --- every model ------------------------------------------------------------------------------


def loudou_models() -> list[Any]:
    return [m for m in admin.site._registry if m.__module__.startswith("loudou.")]


def test_every_loudou_model_is_registered() -> None:
    from django.apps import apps

    models = {
        m
        for app in (
            "core",
            "org",
            "playbooks",
            "customers",
            "pipeline",
            "analytics",
            "learning",
            "interop",
            "api",
        )
        for m in apps.get_app_config(app).get_models()
    }
    assert models == set(loudou_models())


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_every_changelist_and_change_page_answers(
    staff: Any, deal: Opportunity, pending_approval: Any, language: str
) -> None:
    staff.defaults["HTTP_ACCEPT_LANGUAGE"] = language
    from django.contrib.contenttypes.models import ContentType
    from django.utils import timezone

    from loudou.interop.models import ExternalId

    ExternalId.objects.create(
        source="test",
        kind="opportunity",
        external_id="X-1",
        content_type=ContentType.objects.get_for_model(Opportunity),
        object_id=deal.pk,
        imported_at=timezone.now(),
    )
    from loudou.interop.models import ImportRun, ImportStatus, RememberedMapping

    RememberedMapping.objects.create(
        source="salesforce",
        playbook_key=deal.playbook.key,
        stages={"Prospecting": "discover"},
        updated_at=timezone.now(),
    )

    ImportRun.objects.create(
        actor=deal.owner,
        created_at=timezone.now(),
        format="salesforce",
        playbook=deal.playbook,
        files=["opps.csv"],
        options={},
        upload="",
        status=ImportStatus.DONE,
        report={"new": 1},
    )
    Client().post("/login/", {"username": "seller", "password": "a wrong password"})
    from loudou.learning.models import WinModel

    WinModel.objects.create(
        playbook=deal.playbook,
        trained_at=timezone.now(),
        cutoff=timezone.now(),
        training_deals=0,
        training_won=0,
        training_snapshots=0,
        evaluation_deals=0,
        evaluation_snapshots=0,
    )
    for model in admin.site._registry:
        response = staff.get(admin_url(model, "changelist"))
        assert response.status_code == 200, model
        obj = model._default_manager.order_by("pk").first()
        if model.__module__.startswith("loudou."):
            assert obj is not None, f"the scenario left {model.__name__} empty"
        if obj is not None:
            response = staff.get(admin_url(model, "change", obj.pk))
            assert response.status_code == 200, model


def test_the_site_is_titled_and_speaks_chinese_by_default(client: Any, org: dict[str, Any]) -> None:
    client.force_login(org["admin"])
    response = client.get("/admin/")
    assert response.status_code == 200
    content = response.content.decode()
    assert "loudou 漏斗" in content
    assert '<html lang="zh-hans"' in content


def test_changelists_make_the_same_number_of_queries_for_more_rows(
    staff: Any, walker: Any, deal: Opportunity
) -> None:
    def counts() -> dict[str, int]:
        out = {}
        for model in loudou_models():
            with CaptureQueriesContext(connection) as queries:
                assert staff.get(admin_url(model, "changelist")).status_code == 200
            out[model.__name__] = len(queries)
        return out

    before = counts()
    walk_a_deal(walker, "第二个商机")
    assert counts() == before


def test_a_seller_is_sent_to_the_login_page(client: Any, org: dict[str, Any]) -> None:
    client.force_login(org["seller"])
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    response = client.get(admin_url(Opportunity, "changelist"))
    assert response.status_code == 302


# --- append-only rows -------------------------------------------------------------------------


@pytest.mark.parametrize("model", APPEND_ONLY, ids=lambda m: m.__name__)
def test_append_only_rows_cannot_be_added_changed_or_deleted(
    staff: Any, deal: Opportunity, model: Any
) -> None:
    obj = model.objects.order_by("pk").first()
    stored = model.objects.filter(pk=obj.pk).values().get()

    assert staff.get(admin_url(model, "add")).status_code == 403
    assert staff.post(admin_url(model, "add"), {"reason": "forged"}).status_code == 403
    response = staff.post(admin_url(model, "change", obj.pk), {"reason": "forged", "note": "x"})
    assert response.status_code == 403
    assert staff.post(admin_url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403

    assert model.objects.filter(pk=obj.pk).values().get() == stored
    page = staff.get(admin_url(model, "change", obj.pk)).content.decode()
    assert 'name="_save"' not in page
