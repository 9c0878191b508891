"""Columns read as numpy arrays straight from the cursor (`loudou.analytics.rows`): exact to the
microsecond on the database in use, with the ORM's filters and visibility rule honoured."""

import datetime as dt

import numpy as np
import pytest
from django.contrib.auth.models import AnonymousUser
from django.db.models import Case, IntegerField, Value, When
from django.utils import timezone

from loudou.analytics import rows
from loudou.analytics.models import OpportunityStay
from loudou.analytics.scope import Scope
from loudou.core import clock
from loudou.core.cli import SystemActor
from loudou.pipeline.models import LostReason, Opportunity

# Microseconds that a float of epoch seconds cannot hold exactly, one on a whole second, one just
# under the next second (which SQLite's own date functions would round up to it), and one
# before 1970.
MOMENTS = [
    dt.datetime(2026, 3, 12, 9, 30, 15, 123457, tzinfo=dt.UTC),
    dt.datetime(2026, 3, 12, 9, 30, 16, tzinfo=dt.UTC),
    dt.datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
    dt.datetime(1969, 7, 20, 20, 17, 40, 500001, tzinfo=dt.UTC),
]


@pytest.fixture
def opps(walker, org):
    """One deal per moment, created then by the Beijing seller; the last one is then handed to
    the Shanghai seller (owner and branch)."""
    made = []
    for i, moment in enumerate(MOMENTS):
        with clock.frozen_at(moment):
            made.append(walker.create(name=f"deal {i}"))
    Opportunity.objects.filter(pk=made[-1].pk).update(
        owner=org["sh_seller"], branch=org["shanghai"]
    )
    return made


def test_datetimes_are_exact_to_the_microsecond(opps):
    qs = Opportunity.objects.filter(pk__in=[o.pk for o in opps])
    ids, created = rows.columns(qs, "pk", "created_at")
    assert ids.dtype == np.int64 and created.dtype == np.dtype("datetime64[us]")
    got = {int(i): rows.to_datetime(c) for i, c in zip(ids, created, strict=True)}
    stored = dict(qs.values_list("pk", "created_at"))
    assert got == stored
    assert sorted(got.values()) == sorted(MOMENTS)
    # Epoch seconds equal `timestamp()` to the last bit.
    by_id = dict(zip(ids.tolist(), rows.seconds(created).tolist(), strict=True))
    assert by_id == {pk: moment.timestamp() for pk, moment in stored.items()}
    assert rows.moment(MOMENTS[0]) == np.datetime64("2026-03-12T09:30:15.123457")


def days_between(start: dt.datetime, end: dt.datetime) -> float:
    """The days between two datetimes as velocity computed them before the numpy reads."""
    return max(0.0, (end - start).total_seconds() / 86_400.0)


def test_null_datetimes_and_days_between(opps):
    stays = OpportunityStay.objects.filter(opportunity__in=[o.pk for o in opps])
    deal, entered, exited = rows.columns(stays, "opportunity_id", "entered_at", "exited_at")
    assert deal.size == len(opps)
    assert np.isnat(exited).all()  # every deal is still in its first stage
    assert np.isnan(rows.seconds(exited)).all()
    now = timezone.make_aware(dt.datetime(2026, 4, 1, 8, 0, 0, 1))
    days = rows.days_between(entered, rows.moment(now))
    expected = {
        stay.opportunity_id: days_between(stay.entered_at, now) for stay in stays.order_by()
    }
    assert dict(zip(deal.tolist(), days.tolist(), strict=True)) == expected


def test_integer_expressions_and_mixed_widths(opps):
    # A status coded in SQL; texts with and without microseconds in one column.
    code = Case(When(name="deal 1", then=Value(7)), default=Value(0), output_field=IntegerField())
    coded, created = rows.columns(Opportunity.objects.all(), code, "created_at")
    assert sorted(coded.tolist()) == [0, 0, 0, 7]
    assert rows.to_datetime(created[coded == 7][0]) == MOMENTS[1]


def test_a_scope_filter_is_honoured(opps, org, playbook):
    scope = Scope(actor=SystemActor(), playbook=playbook, owner_id=org["sh_seller"].pk)
    (ids,) = rows.columns(scope.opportunities(), "pk")
    assert ids.tolist() == [opps[-1].pk]
    # A seller sees only his own deals.
    (ids,) = rows.columns(Scope(actor=org["seller"], playbook=playbook).opportunities(), "pk")
    assert sorted(ids.tolist()) == sorted(o.pk for o in opps[:-1])


def test_anonymous_sees_nothing(opps, playbook, django_assert_num_queries):
    anonymous = AnonymousUser()
    with django_assert_num_queries(0):
        ids, created = rows.columns(
            Scope(actor=anonymous, playbook=playbook).opportunities(), "pk", "created_at"
        )
    assert ids.size == 0 and created.size == 0
    assert ids.dtype == np.int64 and created.dtype == np.dtype("datetime64[us]")
    assert not rows.sees_every_opportunity(anonymous)


def test_sees_every_opportunity_agrees_with_visible_to(org, django_assert_num_queries):
    users = [*org.values(), SystemActor()]
    for user in users:
        if not hasattr(user, "is_authenticated"):
            continue  # a branch
        unfiltered = not Opportunity.objects.visible_to(user).query.has_filters()
        with django_assert_num_queries(0):
            assert rows.sees_every_opportunity(user) == unfiltered, user
    org["executive"].is_active = False
    assert not rows.sees_every_opportunity(org["executive"])


def test_scan_in_keeps_the_rows_asked_for(opps, playbook):
    qs = rows.scan_in(Opportunity.objects.all(), "playbook_id", [playbook.pk])
    assert "+ 0" in str(qs.query)  # not the index
    assert sorted(rows.columns(qs, "pk")[0].tolist()) == sorted(o.pk for o in opps)
    assert (
        rows.columns(rows.scan_in(Opportunity.objects.all(), "playbook_id", [-1]), "pk")[0].size
        == 0
    )


def test_only_integers_and_datetimes(opps):
    with pytest.raises(TypeError):
        rows.columns(Opportunity.objects.all(), "name")


def test_null_and_set_datetimes_in_one_column(opps, walker):
    """Stays closed and still open side by side: each value in its row, NULL as NaT."""
    with clock.frozen_at(dt.datetime(2026, 3, 13, 1, 2, 3, 450000, tzinfo=dt.UTC)):
        walker.to(opps[0], "intent")
    stays = OpportunityStay.objects.all()
    pk, exited = rows.columns(stays, "pk", "exited_at")
    got = {
        p: (None if np.isnat(e) else rows.to_datetime(e))
        for p, e in zip(pk.tolist(), exited, strict=True)
    }
    assert got == dict(stays.values_list("pk", "exited_at"))
    assert sum(value is not None for value in got.values()) == 1


def test_labels_hold_any_character(opps, django_assert_num_queries):
    """Names as a list shows them: commas, quotes, line breaks, an empty one, Chinese; one query."""
    names = ["含,逗号 “引号”", "", "名\n换行, 'x'", "plain"]
    for opp, name in zip(opps, names, strict=True):
        Opportunity.objects.filter(pk=opp.pk).update(name=name)
    qs = Opportunity.objects.filter(pk__in=[o.pk for o in opps])
    with django_assert_num_queries(1):
        ids, got, owners = rows.columns(qs, "pk", rows.Label("name"), rows.Label("owner__username"))
    assert got.dtype == object
    expected = {
        pk: (name, owner) for pk, name, owner in qs.values_list("pk", "name", "owner__username")
    }
    assert (
        dict(zip(ids.tolist(), zip(got.tolist(), owners.tolist(), strict=True), strict=True))
        == expected
    )
    assert sorted(got.tolist()) == sorted(names)
    assert rows.columns(qs.none(), rows.Label("name"))[0].size == 0
    with pytest.raises(TypeError):
        rows.columns(qs, rows.Label("amount"))


def test_a_label_holding_the_separator_is_read_again_in_hex(opps, django_assert_num_queries):
    """U+001F joins the labels; a name holding it would shift every later one, so the read is
    done again with each label in hex (two queries), and every value is still in its row."""
    names = ["a\x1fb", "\x1f", "中\x1f文,", "plain"]
    for opp, name in zip(opps, names, strict=True):
        Opportunity.objects.filter(pk=opp.pk).update(name=name)
    qs = Opportunity.objects.filter(pk__in=[o.pk for o in opps])
    with django_assert_num_queries(2):
        ids, got = rows.columns(qs, "pk", rows.Label("name"))
    assert dict(zip(ids.tolist(), got.tolist(), strict=True)) == dict(qs.values_list("pk", "name"))


def test_null_labels_through_a_relation(opps):
    """A label through a nullable relation (no lost reason) is None, in its row."""
    reason = LostReason.objects.order_by("pk").first()
    Opportunity.objects.filter(pk=opps[1].pk).update(status="lost", lost_reason=reason)
    qs = Opportunity.objects.filter(pk__in=[o.pk for o in opps])
    ids, reasons = rows.columns(qs, "pk", rows.Label("lost_reason__key"))
    expected = {o.pk: None for o in opps} | {opps[1].pk: reason.key}
    assert dict(zip(ids.tolist(), reasons.tolist(), strict=True)) == expected


def test_a_list_of_querysets_reads_their_rows_together(opps, django_assert_num_queries):
    """Several querysets of one model: all their rows, in one query; an empty one adds none."""
    first, second = opps[0], opps[2]
    arms = [
        Opportunity.objects.filter(pk=first.pk),
        Opportunity.objects.filter(pk=second.pk),
        Opportunity.objects.none(),
        Opportunity.objects.filter(pk=first.pk),  # rows are not made unique (UNION ALL)
    ]
    with django_assert_num_queries(1):
        ids, created = rows.columns(arms, "pk", "created_at")
    assert sorted(ids.tolist()) == sorted([first.pk, second.pk, first.pk])
    assert {int(i): rows.to_datetime(c) for i, c in zip(ids, created, strict=True)} == {
        first.pk: first.created_at,
        second.pk: second.created_at,
    }
    with django_assert_num_queries(0):
        assert rows.columns([Opportunity.objects.none()], "pk")[0].size == 0


def test_datetimes_far_from_now_are_exact(opps):
    """Outside 1902–2038 PostgreSQL's float of the epoch no longer gives the microseconds back,
    and the read takes the exact numeric there (SQLite parses its texts as they are)."""
    far = [
        dt.datetime(1850, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC),
        dt.datetime(2100, 6, 1, 12, 0, 0, 999999, tzinfo=dt.UTC),
        dt.datetime(9999, 12, 31, tzinfo=dt.UTC),  # a span still in force ends there
        dt.datetime(2037, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
    ]
    for opp, moment in zip(opps, far, strict=True):
        Opportunity.objects.filter(pk=opp.pk).update(created_at=moment)
    qs = Opportunity.objects.filter(pk__in=[o.pk for o in opps])
    ids, created = rows.columns(qs, "pk", "created_at")
    got = {int(i): rows.to_datetime(c) for i, c in zip(ids, created, strict=True)}
    assert got == dict(qs.values_list("pk", "created_at"))
    assert sorted(got.values()) == sorted(far)
