"""The forecast weighed by learned probabilities: the same numbers `model explain` shows for
each deal, the answer says which probabilities it used, and without a model it says so and
uses the deals' own."""

import datetime as dt
import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from loudou.analytics.forecast import forecast, learned_for, parse_period, targets_view
from loudou.analytics.scope import Scope
from loudou.core import clock
from loudou.learning.features import History, days
from loudou.learning.models import WinModel
from loudou.learning.selectors import learned_probabilities, win_explain
from loudou.learning.services import win_model_train
from loudou.pipeline.models import Opportunity, Status
from loudou.pipeline.services.project import competitor_add
from tests.learning.test_learning import START, _company, _deal

NOW = START + dt.timedelta(days=450)
PERIOD = parse_period("2025Q2")  # NOW is 2025-03-27: the open deals close in April–June


@pytest.fixture
def company(org, account, playbook):
    _company(org, account, playbook)
    with clock.frozen_at(NOW):
        opened = [
            _deal(
                org,
                account,
                playbook,
                900 + i,
                big=i % 2 == 0,
                won=None,
                created=NOW - dt.timedelta(days=10 + i),
                length=40 + 10 * i,
            )
            for i in range(6)
        ]
    return opened


def _expected_weighted(scope, probabilities):
    opps = scope.opportunities().filter(
        status=Status.OPEN, close_date__gte=PERIOD.start, close_date__lte=PERIOD.end
    )
    return sum(
        (o.amount * Decimal(repr(round(100 * probabilities[o.pk], 2))) / 100 for o in opps),
        Decimal("0.00"),
    )


def test_without_a_model_the_deals_own_probabilities_are_used_and_said(org, playbook, company):
    scope = Scope(actor=org["seller"], playbook=playbook)
    with clock.frozen_at(NOW):
        own = forecast(scope, PERIOD, runs=500)
        learned = forecast(scope, PERIOD, runs=500, probabilities="learned")
    assert own["probabilities"]["source"] == "deal"
    assert learned["probabilities"]["source"] == "none"
    assert "No win model is trained for playbook" in learned["probabilities"]["note"]
    assert {k: v for k, v in learned.items() if k != "probabilities"} == {
        k: v for k, v in own.items() if k != "probabilities"
    }


@pytest.mark.parametrize("used", ["logistic", "stage_rates"])
def test_learned_forecast_weighs_each_deal_as_explain_shows_it(org, playbook, company, used):
    model = win_model_train(playbook=playbook, actor=None)
    if model.parameters["used"] != used:  # the other source, as a fallback would store it
        brier = {
            k: model.metrics[k]["brier"] for k in ("logistic", "stage_rates", "stage_defaults")
        }
        fallback = (
            None if used == "logistic" else {"reason": "loses_on_later_deals", "brier": brier}
        )
        WinModel.objects.filter(pk=model.pk).update(
            parameters={**model.parameters, "used": used, "fallback": fallback},
            offered=used == "logistic",
        )
    scope = Scope(actor=org["seller"], playbook=playbook)
    with clock.frozen_at(NOW):
        data = forecast(scope, PERIOD, runs=500, probabilities="learned")
        rows = scope.opportunities().filter(status=Status.OPEN)
        by_deal, info = learned_probabilities(
            playbook, list(rows.values_list("pk", "stage__key", "branch_id", "owner_id"))
        )
        for opp in rows:
            assert win_explain(org["seller"], opp.pk)["probability"] == round(by_deal[opp.pk], 4)
        in_period = rows.filter(close_date__gte=PERIOD.start, close_date__lte=PERIOD.end)
        assert in_period.count() == data["open_deals"] >= 3
        own = forecast(scope, PERIOD, runs=500)
        targets = targets_view(scope, PERIOD, runs=500, probabilities="learned")
    assert info["source"] == used == data["probabilities"]["source"]
    assert targets["probabilities"] == data["probabilities"]
    assert Decimal(data["weighted"]) == Decimal(data["booked"]) + _expected_weighted(scope, by_deal)
    assert data["weighted"] != own["weighted"]
    # Probabilities in (0, 1): the simulation's median lies between nothing and everything.
    total = sum(o.amount for o in in_period)
    assert Decimal("0") <= Decimal(data["simulated"]["p50"]) <= total


def test_learned_forecast_only_counts_what_the_user_may_see(org, playbook, company):
    win_model_train(playbook=playbook, actor=None)
    with clock.frozen_at(NOW):
        outsider = forecast(
            Scope(actor=org["sh_seller"], playbook=playbook), PERIOD, runs=200,
            probabilities="learned",
        )  # fmt: skip
    assert (outsider["open_deals"], outsider["weighted"]) == (0, "0.00")
    assert Opportunity.objects.filter(status=Status.OPEN).count() == 6


def test_cli_and_api_say_which_probabilities(org, playbook, company, client):
    model = win_model_train(playbook=playbook, actor=None)
    out = StringIO()
    with clock.frozen_at(NOW):
        call_command(
            "forecast", "--period", "2025Q2", "--probabilities", "learned", "--json",
            "--simulations", "200", stdout=out,
        )  # fmt: skip
        table = StringIO()
        call_command("forecast", "--period", "2025Q2", "--probabilities", "learned",
                     "--simulations", "200", stdout=table)  # fmt: skip
        client.force_login(org["seller"])
        answer = client.get(
            "/api/v1/analytics/forecast",
            {"period": "2025Q2", "probabilities": "learned", "simulations": 200},
        )
    data = json.loads(out.getvalue())
    assert data["probabilities"]["source"] == model.parameters["used"]
    assert data["probabilities"]["model_trained_at"] == model.trained_at.isoformat()
    assert "Probabilities learned from history" in table.getvalue()
    assert answer.status_code == 200, answer.content
    assert answer.json()["probabilities"]["source"] == model.parameters["used"]
    bad = client.get("/api/v1/analytics/forecast", {"period": "2025Q2", "probabilities": "x"})
    assert bad.status_code in (400, 422)


def test_forecast_page_says_which_probabilities_it_used(org, playbook, company, client_for):
    client = client_for("seller")
    with clock.frozen_at(NOW):
        none = client.get("/analytics/forecast/", {"period": "2025Q2", "probabilities": "learned"})
        assert none.status_code == 200
        assert "No win model is trained for playbook" in none.content.decode()
        model = win_model_train(playbook=playbook, actor=None)
        page = client.get("/analytics/forecast/", {"period": "2025Q2", "probabilities": "learned"})
        own = client.get("/analytics/forecast/", {"period": "2025Q2"})
        odd = client.get("/analytics/forecast/", {"period": "2025Q2", "probabilities": "guess"})
        data = forecast(
            Scope(actor=org["seller"], playbook=playbook), PERIOD, probabilities="learned"
        )
    html = page.content.decode()
    assert "Probabilities learned from history" in html
    assert model.trained_at.date().isoformat() in html
    assert page.context["figures"]["weighted"] == data["weighted"]
    assert own.context["figures"]["probabilities"]["source"] == "deal"
    assert "Each deal&#x27;s own probability" in own.content.decode()
    assert odd.status_code == 200
    assert "is not a choice of probabilities" in odd.content.decode()
    assert odd.context["figures"]["probabilities"]["source"] == "deal"


def test_targets_weigh_every_row_by_learned_probabilities_whatever_the_filter(
    org, playbook, company
):
    # The page computes the learned map once for a filtered scope and hands it to the targets
    # view, which sets the industry filter aside: the map must cover every deal it counts.
    win_model_train(playbook=playbook, actor=None)
    from loudou.customers.models import Industry
    from loudou.org.models import Target, TargetScope

    month = PERIOD.start
    Target.objects.create(scope=TargetScope.USER, user=org["seller"], month=month, amount=1)
    other = Industry.objects.exclude(pk=company[0].account.industry_id).first()
    filtered = Scope(actor=org["seller"], playbook=playbook, industry_id=other.pk)
    whole = Scope(actor=org["seller"], playbook=playbook)
    with clock.frozen_at(NOW):
        by_deal, _info = learned_for(filtered, PERIOD)
        rows = targets_view(filtered, PERIOD, runs=200, probabilities="learned",
                            learned=(by_deal, _info))["rows"]  # fmt: skip
        alone = targets_view(whole, PERIOD, runs=200, probabilities="learned")["rows"]
    assert [r["weighted"] for r in rows] == [r["weighted"] for r in alone]
    assert Decimal(rows[0]["weighted"]) == _expected_weighted(whole, by_deal)


def test_a_deal_now_reads_the_same_from_its_own_facts_as_from_the_whole_history(
    org, playbook, company, django_assert_max_num_queries
):
    # Explaining one deal and predicting the open pipeline read only the deals concerned and
    # count the closed ones (RatesNow); the snapshot must equal the one the whole history gives.
    with clock.frozen_at(NOW):
        competitor_add(opportunity=company[0], actor=org["seller"], name="甲骨文")
    later = NOW + dt.timedelta(days=3)
    whole = History(playbook)
    pipeline = History(playbook, open_only=True)
    assert set(pipeline.deals) == {o.pk for o in company}
    for opp in company:
        with django_assert_max_num_queries(12):
            alone = History(playbook, only=opp.pk)
        assert set(alone.deals) == {opp.pk}
        expected = whole.snapshot(whole.deals[opp.pk], days(later))
        for history in (alone, pipeline):
            found = history.snapshot(history.deals[opp.pk], days(later))
            assert found.values == pytest.approx(expected.values)
            assert found.shown == expected.shown
    assert whole.snapshot(whole.deals[company[0].pk], days(later)).values["competitors"] == 1.0
