"""Helpers of the analytics page tests: the day they read on (NOW), moments in January, a page
and `loudou <command> --json` read on NOW, and a chart's data as the page holds it. The history
they read is conftest.py's."""

import datetime as dt
import io
import json
import re
from typing import Any

from django.core.management import call_command
from django.utils import timezone

from loudou.core import clock
from loudou.core.cli import dump_json

NOW = dt.date(2026, 3, 12)


FLOW = "/analytics/flow/?from=2026-01-01&to=2026-03-12&window_from=2026-01-01&window_to=2026-04-30"


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


def jan(day: int) -> dt.date:
    return dt.date(2026, 1, 1) + dt.timedelta(days=day - 1)


def get(client: Any, url: str) -> Any:
    """The page as it reads on NOW (the clock every selector reads)."""
    with clock.frozen_at(at(NOW)):
        return client.get(url)


def cli(*args: str) -> Any:
    out = io.StringIO()
    with clock.frozen_at(at(NOW)):
        call_command(*args, "--json", "--lang", "en", stdout=out)
    return json.loads(out.getvalue())


def as_json(value: Any) -> Any:
    """A selector's answer as the CLI prints it (Decimal and dates as strings)."""
    return json.loads(dump_json(value))


def chart(html: str, name: str) -> dict[str, Any]:
    found = re.search(rf'<script id="{name}" type="application/json">(.*?)</script>', html)
    assert found, f"the chart data {name} is missing"
    return json.loads(found.group(1))
