"""The demo company: a deterministic sales organisation with two years of history.

`generate(seed=42, size="small")` builds branches and people, customers with their group
hierarchies, opportunities walked down the funnel with evidence, 立项, teams, quotes and
outcomes, and targets, all through the real services, with the clock set back to each event's
date. `loudou demo` is its command.
"""

from loudou.demo.company import SIZES, DatabaseNotEmpty, DemoSummary, existing_data, generate
from loudou.demo.organisation import DEMO_PASSWORD

__all__ = [
    "DEMO_PASSWORD",
    "SIZES",
    "DatabaseNotEmpty",
    "DemoSummary",
    "existing_data",
    "generate",
]
