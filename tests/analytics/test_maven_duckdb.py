"""The analytics on data no one here generated: a sample of the Maven CRM dataset, imported with
`loudou import maven`, against DuckDB SQL computed straight from the CSV files' rows.

What the DuckDB side assumes is what the analytics issue says of the import, nothing read from
loudou: a deal was created at its engage_date (an open Prospecting row, which has none, at the
snapshot date: the latest date in the files) and entered Engaging then; a Won or Lost row was
won or lost at its close_date; every event happens at noon local time, so durations are whole
days. A closed deal is worth its close_value all along, an open one its product's list price
(products.csv; the pipeline's "GTXPro" is products.csv's "GTX Pro"). The probabilities are the
`simple` playbook's: Prospecting 20 %, Engaging 60 %.
"""

import datetime as dt
import shutil
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import duckdb
import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from loudou.analytics.conversion import conversion_by_stage
from loudou.analytics.selectors import funnel_snapshot
from loudou.analytics.velocity import velocity
from loudou.core import clock
from loudou.core.cli import SystemActor
from loudou.playbooks.selectors import playbook_get

DATASET = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "maven-crm"
SMALL_TABLES = ("sales_teams.csv", "accounts.csv", "products.csv")
EVERY = 12  # every 12th pipeline row: 733 deals of every stage, 2016-10 to 2017-12
AS_OF = dt.date(2017, 6, 30)
NOW = dt.datetime(2018, 1, 15, 12, 0)  # local time; frozen so the open deals' ages are fixed
PROBABILITY = {"prospecting": 20, "engaging": 60}

pytestmark = pytest.mark.skipif(
    not (DATASET / "sales_pipeline.csv").is_file(),
    reason=f"the Maven CRM dataset is not at {DATASET} (see shared/datasets/maven-crm/SOURCE.md)",
)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small tables and every 12th row of sales_pipeline.csv, byte for byte."""
    directory = tmp_path_factory.mktemp("maven-sample")
    for name in SMALL_TABLES:
        shutil.copy(DATASET / name, directory / name)
    lines = (DATASET / "sales_pipeline.csv").read_bytes().splitlines(keepends=True)
    (directory / "sales_pipeline.csv").write_bytes(b"".join([lines[0], *lines[EVERY::EVERY]]))
    return directory


@pytest.fixture(scope="module")
def duck(sample: Path) -> Any:
    """The CSV files in DuckDB (its built-in read_csv; no extension), with one row per deal:
    its stage in the file, when it was created, engaged and closed, and its amount."""
    con = duckdb.connect()
    for name in ("sales_pipeline", "products"):
        con.execute(
            f"CREATE TABLE {name} AS SELECT * FROM read_csv('{sample / name}.csv', "
            "header = true, all_varchar = true)"
        )
    con.execute(
        """
        CREATE TABLE deal AS
        WITH snapshot AS (
            SELECT max(greatest(coalesce(engage_date::DATE, close_date::DATE),
                                coalesce(close_date::DATE, engage_date::DATE))) AS day
            FROM sales_pipeline)
        SELECT p.opportunity_id AS id, p.deal_stage AS stage,
               coalesce(p.engage_date::DATE, (SELECT day FROM snapshot)) AS created,
               p.engage_date::DATE AS engaged,
               CASE WHEN p.deal_stage IN ('Won', 'Lost') THEN p.close_date::DATE END AS closed,
               CASE WHEN p.deal_stage IN ('Won', 'Lost') THEN p.close_value::DECIMAL(18, 2)
                    ELSE pr.sales_price::DECIMAL(18, 2) END AS amount
        FROM sales_pipeline p
        LEFT JOIN products pr
          ON pr.product = CASE p.product WHEN 'GTXPro' THEN 'GTX Pro' ELSE p.product END
        """
    )
    yield con
    con.close()


@pytest.fixture(scope="module")
def imported(django_db_setup: Any, django_db_blocker: Any, sample: Path) -> Any:
    """The sample imported once for the module, inside a transaction rolled back at its end
    (each test's own transaction nests inside it as a savepoint)."""
    with django_db_blocker.unblock(), transaction.atomic():
        call_command("import", "maven", str(sample), "--json", stdout=StringIO())
        yield
        transaction.set_rollback(True)


def now() -> dt.datetime:
    return timezone.make_aware(NOW)


def expected_funnel(con: Any, day: dt.date) -> dict[str, Any]:
    """Open deals per stage (count, amount, weighted), won and lost, at the end of `day`."""
    rows = con.execute(
        """
        SELECT CASE WHEN closed <= $day THEN lower(stage)
                    WHEN engaged <= $day THEN 'engaging' ELSE 'prospecting' END AS state,
               count(*), sum(amount)
        FROM deal WHERE created <= $day GROUP BY state
        """,
        {"day": day},
    ).fetchall()
    found = {state: (n, amount) for state, n, amount in rows}
    zero = Decimal("0.00")
    out: dict[str, Any] = {}
    for key in ("prospecting", "engaging"):
        n, amount = found.get(key, (0, zero))
        out[key] = (n, amount, (amount * PROBABILITY[key] / 100).quantize(zero))
    for key in ("won", "lost"):
        out[key] = found.get(key, (0, zero))
    return out


def loudou_funnel(result: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        s["key"]: (s["count"], Decimal(s["amount"]), Decimal(s["weighted_amount"]))
        for s in result["stages"]
    }
    for key in ("won", "lost"):
        out[key] = (result[key]["count"], Decimal(result[key]["amount"]))
    return out


@pytest.mark.django_db
def test_funnel_as_of_a_past_date_and_now(imported: None, duck: Any) -> None:
    simple = playbook_get("simple")
    past = loudou_funnel(funnel_snapshot(SystemActor(), simple, as_of=AS_OF))
    expected_past = expected_funnel(duck, AS_OF)
    assert past == expected_past
    # Mid-2017 every deal that existed was engaging or closed; the sample holds all four kinds.
    assert expected_past["engaging"][0] > 0 and expected_past["won"][0] > 0
    assert expected_past["prospecting"][0] == 0
    with clock.frozen_at(now()):
        current = loudou_funnel(funnel_snapshot(SystemActor(), simple))
    expected_now = expected_funnel(duck, NOW.date())
    assert current == expected_now
    assert expected_now["prospecting"][0] == 42 and expected_now["engaging"][0] == 114
    assert expected_now["won"][0] == 372 and expected_now["lost"][0] == 205


def expected_conversion(con: Any) -> dict[str, tuple[int, int, int, int]]:
    """(reached, advanced, lost here, open here) per stage and overall, from the file's stages:
    every deal reached Prospecting; a deal with an engage date reached Engaging (and so advanced
    from Prospecting); a won deal advanced from Engaging; a lost one was lost there."""
    row = con.execute(
        """
        SELECT count(*),
               count(*) FILTER (WHERE engaged IS NOT NULL),
               count(*) FILTER (WHERE engaged IS NULL AND stage = 'Lost'),
               count(*) FILTER (WHERE stage = 'Prospecting'),
               count(*) FILTER (WHERE stage = 'Won'),
               count(*) FILTER (WHERE stage = 'Lost' AND engaged IS NOT NULL),
               count(*) FILTER (WHERE stage = 'Engaging'),
               count(*) FILTER (WHERE stage = 'Lost'),
               count(*) FILTER (WHERE stage IN ('Prospecting', 'Engaging'))
        FROM deal
        """
    ).fetchone()
    total, engaged, lost_early, prospecting, won, lost_engaging, engaging, lost, open_ = row
    return {
        "prospecting": (total, engaged, lost_early, prospecting),
        "engaging": (engaged, won, lost_engaging, engaging),
        "won": (won, 0, 0, 0),
        "overall": (total, won, lost, open_),
    }


def rates(reached: int, advanced: int, lost: int) -> tuple[float | None, float | None]:
    naive = round(advanced / reached, 4) if reached else None
    closed = round(advanced / (advanced + lost), 4) if advanced + lost else None
    return naive, closed


@pytest.mark.django_db
def test_conversion_naive_and_closed_only(imported: None, duck: Any) -> None:
    with clock.frozen_at(now()):
        result = conversion_by_stage(SystemActor(), playbook_get("simple"), resamples=0)
    figures = {s["key"]: s for s in result["stages"]} | {"overall": result["overall"]}
    expected = expected_conversion(duck)
    assert list(figures) == ["prospecting", "engaging", "won", "overall"]
    for key, (reached, advanced, lost, open_) in expected.items():
        got = figures[key]
        assert (got["reached"], got["advanced"], got["lost_here"], got["open_here"]) == (
            reached,
            advanced,
            lost,
            open_,
        ), key
        if key != "won":
            assert (got["naive"], got["closed_only"]) == rates(reached, advanced, lost), key
    assert expected["engaging"] == (691, 372, 205, 114)
    # Open deals count as censored, never as failures: the censoring-aware estimate is at least
    # the naive ratio.
    engaging = figures["engaging"]
    assert engaging["naive"] <= engaging["censored_estimate"] <= 1


KM_SQL = """
    km_t AS (SELECT grp, dur AS t, count(*) AS n_t, count(*) FILTER (WHERE obs) AS d
             FROM km_in GROUP BY grp, dur),
    km_r AS (SELECT *, sum(n_t) OVER (PARTITION BY grp ORDER BY t DESC
                                      ROWS UNBOUNDED PRECEDING) AS at_risk FROM km_t),
    km_s AS (SELECT grp, t, product(1.0 - d::DOUBLE / at_risk)
                 OVER (PARTITION BY grp ORDER BY t ROWS UNBOUNDED PRECEDING) AS surv
             FROM km_r WHERE d > 0),
    km AS (SELECT grp, min(t) FILTER (WHERE surv <= 0.5 + 1e-9) AS km_median
           FROM km_s GROUP BY grp)
"""


def expected_velocity(con: Any, today: dt.date) -> dict[str, tuple]:
    """Per stage and for the cycle to won: (completed, median, p80, Kaplan–Meier median) in days.
    A deal's Prospecting stay ends the day it engaged (0 days); its Engaging stay ends when it
    was won or lost; stays still open are censored at `today` (all events are at noon)."""
    rows = con.execute(
        f"""
        WITH km_in AS (
            SELECT 'prospecting' AS grp,
                   CASE WHEN engaged IS NULL THEN $today - created ELSE 0 END AS dur,
                   engaged IS NOT NULL AS obs
            FROM deal
            UNION ALL
            SELECT 'engaging', coalesce(closed, $today) - engaged, closed IS NOT NULL
            FROM deal WHERE engaged IS NOT NULL
            UNION ALL
            SELECT 'cycle', coalesce(closed, $today) - created, stage = 'Won'
            FROM deal WHERE stage <> 'Lost'),
        {KM_SQL},
        summary AS (SELECT grp, count(*) FILTER (WHERE obs) AS completed,
                           quantile_cont(dur, [0.5, 0.8]) FILTER (WHERE obs) AS q
                    FROM km_in GROUP BY grp)
        SELECT grp, completed, q[1], q[2], km_median FROM summary LEFT JOIN km USING (grp)
        """,
        {"today": today},
    ).fetchall()
    return {
        grp: (completed, median, p80, None if km is None else float(km))
        for grp, completed, median, p80, km in rows
    }


@pytest.mark.django_db
def test_time_in_stage_medians(imported: None, duck: Any) -> None:
    with clock.frozen_at(now()):
        result = velocity(SystemActor(), playbook_get("simple"))
    expected = expected_velocity(duck, NOW.date())
    got = {
        s["key"]: (s["completed_stays"], s["median_days"], s["p80_days"], s["km_median_days"])
        for s in result["stages"]
    }
    cycle = result["cycle_to_won"]
    got["cycle"] = (
        cycle["completed"],
        cycle["median_days"],
        cycle["p80_days"],
        cycle["km_median_days"],
    )
    for key, (completed, median, p80, km) in expected.items():
        n, our_median, our_p80, our_km = got[key]
        assert n == completed, key
        # Medians to the day (loudou rounds to 0.1 day; every duration here is whole days).
        assert abs(our_median - median) < 0.5, (key, our_median, median)
        assert abs(our_p80 - p80) < 0.5, (key, our_p80, p80)
        assert (our_km is None) == (km is None), key
        if km is not None:
            assert abs(our_km - km) < 0.5, (key, our_km, km)
    assert expected["prospecting"][0] == 691 and expected["prospecting"][1] == 0
    assert expected["engaging"][0] == 577 and expected["cycle"][0] == 372
