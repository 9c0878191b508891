"""The whole funnel, walked through the real services."""

from loudou.pipeline.models import OpportunityHistory, Status


def test_an_opportunity_walks_from_discovery_to_won(walker):
    opp = walker.create()
    assert (opp.stage.key, opp.version) == ("discover", 1)

    won = walker.to(opp, "closed")

    assert won.status == Status.WON
    assert won.stage.key == "closed"
    actions = list(
        OpportunityHistory.objects.filter(opportunity=won)
        .order_by("valid_from", "id")
        .values_list("action", "stage__key")
    )
    assert actions == [
        ("create", "discover"),
        ("advance", "intent"),
        ("advance", "project"),
        ("advance", "recognition"),
        ("advance", "negotiation"),
        ("win", "closed"),
    ]
