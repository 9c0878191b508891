"""The win model page's forms, an administrator's only: accepting suggested probabilities makes a
new playbook version, training makes a new active model; refused for everyone else, a refusal
changes nothing, and bad input is said beside the stage with what was typed kept (escaped).

Every test reads the company of conftest.py, built once for the module."""

from typing import Any

import pytest

from loudou.learning.models import WinModel
from loudou.playbooks.models import Playbook, Stage
from tests.web.learning.win_model import ACCEPT, TRAIN, client, text

# --- accepting the suggested probabilities --------------------------------------------------


def test_admin_accepts_suggested_probabilities(company: dict[str, Any], db: Any) -> None:
    before = Playbook.objects.get(key="project-funnel", is_current=True)
    admin = client(company, "admin")
    response = admin.post(
        ACCEPT,
        {
            "playbook": "project-funnel",
            "accept": ["discover"],
            "probability_discover": "15",
            "probability_intent": "99",  # not ticked: not changed
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/analytics/model/?playbook=project-funnel"
    after = Playbook.objects.get(key="project-funnel", is_current=True)
    assert after.version == before.version + 1
    stages = {s.key: s.probability for s in after.stages.all()}
    old = {s.key: s.probability for s in before.stages.all()}
    assert stages == {**old, "discover": 15}
    page = text(admin.get(response["Location"]).content.decode())
    assert (
        f"Playbook Project sales funnel version {after.version} now uses these default "
        "probabilities: Discover potential opportunities 15%." in page
    )
    # The page now compares the suggestion with the new default.
    assert "15%" in page


@pytest.mark.parametrize("name", ["seller", "manager", "executive"])
def test_accept_and_train_refused_to_others(company: dict[str, Any], db: Any, name: str) -> None:
    stages = list(Stage.objects.order_by("pk").values_list("pk", "probability"))
    versions = list(Playbook.objects.order_by("pk").values_list("pk", "version", "is_current"))
    models = list(WinModel.objects.order_by("pk").values_list("pk", "active"))
    someone = client(company, name)
    accept = someone.post(
        ACCEPT, {"playbook": "project-funnel", "accept": ["discover"], "probability_discover": "9"}
    )
    train = someone.post(TRAIN, {"playbook": "project-funnel"})
    assert accept.status_code == 403
    assert train.status_code == 403
    assert "Only an administrator may do this." in accept.content.decode()
    assert list(Stage.objects.order_by("pk").values_list("pk", "probability")) == stages
    assert (
        list(Playbook.objects.order_by("pk").values_list("pk", "version", "is_current")) == versions
    )
    assert list(WinModel.objects.order_by("pk").values_list("pk", "active")) == models


def test_accept_refusals_keep_the_input(company: dict[str, Any], db: Any) -> None:
    versions = Playbook.objects.count()
    admin = client(company, "admin")
    # Nothing ticked.
    response = admin.post(ACCEPT, {"playbook": "project-funnel", "probability_discover": "30"})
    assert response.status_code == 400
    assert "Tick at least one stage to accept its suggested probability." in text(
        response.content.decode()
    )
    # Not a number: said beside the stage, the input kept (escaped).
    typed = '"><script>alert(1)</script>'
    response = admin.post(
        ACCEPT,
        {"playbook": "project-funnel", "accept": ["discover"], "probability_discover": typed},
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "Enter a whole percent from 0 to 100." in body
    assert "<script>alert(1)" not in body
    assert 'value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in body
    # The service's rule: probabilities never decrease down the funnel.
    intent = Stage.objects.get(playbook__key="project-funnel", playbook__is_current=True,
                               key="intent").probability  # fmt: skip
    response = admin.post(
        ACCEPT,
        {
            "playbook": "project-funnel",
            "accept": ["discover"],
            "probability_discover": str(intent + 1),
        },
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "must not decrease down the funnel" in body
    assert f'name="probability_discover" value="{intent + 1}"' in body
    assert "lower than the stage before it" in body  # beside the stage after it
    assert Playbook.objects.count() == versions


def test_accept_needs_a_post(company: dict[str, Any], db: Any) -> None:
    assert client(company, "admin").get(ACCEPT).status_code == 405
    assert client(company, "admin").get(TRAIN).status_code == 405


# --- training -------------------------------------------------------------------------------


def test_admin_trains_a_model(company: dict[str, Any], db: Any) -> None:
    old = company["model"]
    response = client(company, "admin").post(TRAIN, {"playbook": "project-funnel"})
    assert response.status_code == 302
    assert response["Location"] == "/analytics/model/?playbook=project-funnel"
    active = WinModel.objects.get(active=True)
    assert active.pk != old.pk
    assert WinModel.objects.get(pk=old.pk).active is False


def test_admin_training_with_too_little_history_says_so(company: dict[str, Any], db: Any) -> None:
    models = WinModel.objects.count()
    admin = client(company, "admin")
    response = admin.post(TRAIN, {"playbook": "simple"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    body = response.content.decode()
    assert body.lstrip().startswith('<form id="train-box"')  # the box alone, for htmx
    assert "Not enough history to learn from: 0 deals closed before the cutoff" in body
    assert 'role="alert"' in body
    response = admin.post(TRAIN, {"playbook": "simple"})  # without htmx: the whole page
    assert response.status_code == 400
    assert "<h1>Win model</h1>" in response.content.decode()
    assert WinModel.objects.count() == models
