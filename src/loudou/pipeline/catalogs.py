"""Default catalogues every installation starts with: lost reasons."""

from typing import Any

from django.db import transaction

from loudou.core.audit import audit
from loudou.pipeline.models import LostReason

DEFAULT_LOST_REASONS = [
    ("price", "价格没有竞争力", "Price not competitive"),
    ("functionality", "产品功能不满足需求", "Product does not meet the requirements"),
    ("competitor_relationship", "竞争对手关系更强", "Competitor had the stronger relationship"),
    ("no_budget", "客户预算不足", "Customer has no budget"),
    ("project_cancelled", "客户项目取消或搁置", "Customer cancelled or shelved the project"),
    ("no_decision", "客户迟迟不做决定", "No decision by the customer"),
    ("dropped", "我方主动放弃", "We dropped it"),
    ("other", "其他", "Other"),
]


@transaction.atomic
def lost_reasons_load_defaults(*, actor: Any = None) -> int:
    """Add the default lost reasons that are missing; return how many were added."""
    added = 0
    for order, (key, zh, en) in enumerate(DEFAULT_LOST_REASONS, start=1):
        reason, created = LostReason.objects.get_or_create(
            key=key, defaults={"name_zh": zh, "name_en": en, "order": order}
        )
        if created:
            added += 1
            audit("catalog.save", reason, actor=actor, after={"key": key})
    return added
