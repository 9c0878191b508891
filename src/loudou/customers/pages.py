"""Reads behind the account pages: the filtered, sorted list with pipeline totals per account,
one account with everything its page shows, and its group tree as the user may see it.

Every read goes through `Account.objects.visible_to(user)` (and the same for opportunities), and
each costs a fixed number of queries whatever the number of rows.
"""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, DecimalField, F, IntegerField, OuterRef, Q, Subquery, Sum
from django.db.models.fields.json import JSONField
from django.db.models.functions import Coalesce

from loudou.core.errors import NotFound
from loudou.core.i18n import is_chinese
from loudou.customers.models import Account, AccountQualification, Contact, Industry, SelectionPart
from loudou.org.access import manages_branch
from loudou.org.models import User
from loudou.pipeline.models import Opportunity, Status
from loudou.playbooks.models import Playbook, StageKind

ACCOUNT_RELATED = ("industry", "owner", "branch", "parent")


@dataclass
class AccountFilters:
    """What the account list is narrowed by: target or not, industry, owner, a search text."""

    target: str = ""  # "yes", "no" or "" for both
    industry_id: int | None = None
    owner_id: int | None = None
    search: str = ""

    def apply(self, qs: Any) -> Any:
        if self.target == "yes":
            qs = qs.filter(is_target=True)
        elif self.target == "no":
            qs = qs.filter(is_target=False)
        if self.industry_id:
            qs = qs.filter(industry_id=self.industry_id)
        if self.owner_id:
            qs = qs.filter(owner_id=self.owner_id)
        text = self.search.strip()
        if text:
            qs = qs.filter(Q(name__icontains=text) | Q(credit_code__icontains=text))
        return qs

    @property
    def active(self) -> bool:
        return bool(self.target or self.industry_id or self.owner_id or self.search.strip())


def _sort_fields() -> dict[str, Any]:
    """Sort keys of the list's columns; industries sort by their name in the active language."""
    return {
        "name": "name",
        "fit": "is_target",
        "industry": "industry__name_zh" if is_chinese() else "industry__name_en",
        "owner": "owner__display_name",
        "open": "open_count",
        "amount": "open_amount",
        "updated": "updated_at",
    }


def account_rows(user: Any, filters: AccountFilters, sort: str = "name") -> Any:
    """The accounts `user` may see, filtered and sorted, each annotated with the count and amount
    of its open opportunities the user may see and its latest qualification's criteria results.

    Opportunities the user may not see are left out of the totals: an amount is a detail too.
    """
    open_deals = (
        Opportunity.objects.visible_to(user)
        .filter(account=OuterRef("pk"), status=Status.OPEN)
        .order_by()
        .values("account")
    )
    latest_results = AccountQualification.objects.filter(account=OuterRef("pk")).order_by(
        "-at", "-id"
    )
    qs = filters.apply(Account.objects.visible_to(user)).annotate(
        open_count=Coalesce(
            Subquery(open_deals.annotate(n=Count("pk")).values("n"), output_field=IntegerField()),
            0,
        ),
        open_amount=Coalesce(
            Subquery(
                open_deals.annotate(s=Sum("amount")).values("s"),
                output_field=DecimalField(max_digits=20, decimal_places=2),
            ),
            Decimal(0),
            output_field=DecimalField(max_digits=20, decimal_places=2),
        ),
        icp_results=Subquery(latest_results.values("results")[:1], output_field=JSONField()),
    )
    field_name = _sort_fields().get(sort.lstrip("-"), "name")
    ordering = (
        F(field_name).desc(nulls_last=True)
        if sort.startswith("-")
        else F(field_name).asc(nulls_last=True)
    )
    return qs.select_related(*ACCOUNT_RELATED).order_by(ordering, "name", "id")


def icp_score(results: Any) -> dict[str, int]:
    """How many of the required ICP criteria held in a stored qualification's results."""
    required = [r for r in results or [] if r.get("required", True)]
    return {"held": sum(1 for r in required if r.get("holds")), "required": len(required)}


def account_filter_choices(user: Any) -> dict[str, Any]:
    """The industries and owners the list's filters offer (owners only of visible accounts)."""
    owner_ids = Account.objects.visible_to(user).values("owner_id")
    return {
        "industries": sorted(Industry.objects.all(), key=str),
        "owners": list(User.objects.filter(pk__in=owner_ids).order_by("display_name", "username")),
    }


def account_get(user: Any, pk: int) -> Account:
    """One account `user` may see, or NotFound (hidden and missing look the same)."""
    found = Account.objects.visible_to(user).select_related(*ACCOUNT_RELATED).filter(pk=pk).first()
    if found is None:
        raise NotFound("No such account.")
    return found


def account_contact_get(user: Any, account_pk: int, pk: int) -> Contact:
    """A contact of an account `user` may see, or NotFound."""
    account = account_get(user, account_pk)
    contact = Contact.objects.filter(account=account, pk=pk).first()
    if contact is None:
        raise NotFound("No such contact.")
    contact.account = account
    return contact


def can_edit_account(user: Any, account: Account) -> bool:
    """The owner, a manager of the account's branch, an executive or an admin may edit it (the
    rule `account_update` and `contact_create` enforce)."""
    return account.owner_id == user.pk or manages_branch(user, account.branch_id)


STATUS_ORDER = {Status.OPEN: 0, Status.WON: 1, Status.LOST: 2}
PART_ORDER = {value: i for i, value in enumerate([*SelectionPart.values[1:], ""])}


@dataclass
class TreeNode:
    """One member of a group as the tree shows it; `visible` False means show only the name."""

    depth: int
    pk: int
    name: str
    is_target: bool
    visible: bool
    current: bool


def visible_group_tree(user: Any, account: Account) -> list[TreeNode]:
    """The group `account` belongs to, from its top, in tree order, each member marked with
    whether `user` may open it. Costs one query per level of the group, not per member."""
    chain = [account.pk]
    parent_id = account.parent_id
    while parent_id and parent_id not in chain:
        chain.append(parent_id)
        parent_id = Account.objects.filter(pk=parent_id).values_list("parent_id", flat=True).first()
    top = chain[-1]
    rows: dict[int, dict[str, Any]] = {}
    children: dict[int | None, list[int]] = {}
    fields = ("pk", "name", "parent_id", "is_target")
    level: list[dict[str, Any]] = list(Account.objects.filter(pk=top).values(*fields))
    while level:
        for row in level:
            rows[row["pk"]] = row
        frontier = [row["pk"] for row in level]
        level = [
            row
            for row in Account.objects.filter(parent_id__in=frontier)
            .values(*fields)
            .order_by("name", "id")
            if row["pk"] not in rows
        ]
        for row in level:
            children.setdefault(row["parent_id"], []).append(row["pk"])
    visible = set(
        Account.objects.visible_to(user).filter(pk__in=list(rows)).values_list("pk", flat=True)
    )
    out: list[TreeNode] = []

    def walk(pk: int, depth: int) -> None:
        row = rows[pk]
        out.append(
            TreeNode(
                depth=depth,
                pk=pk,
                name=row["name"],
                is_target=row["is_target"],
                visible=pk in visible,
                current=pk == account.pk,
            )
        )
        for child in children.get(pk, []):
            walk(child, depth + 1)

    walk(top, 0)
    return out


@dataclass
class AccountPage:
    """Everything the account page shows besides the account itself."""

    contacts: list[Contact]
    opportunities: list[Opportunity]
    qualifications: list[AccountQualification]
    tree: list[TreeNode]
    icp_stage: Any = None
    criteria: dict[str, Any] = field(default_factory=dict)
    open_count: int = 0
    open_amount: Decimal = Decimal(0)
    won_count: int = 0
    won_amount: Decimal = Decimal(0)


def account_page(user: Any, account: Account, playbook: Playbook) -> AccountPage:
    """Contacts (selection team first), the opportunities `user` may see (open first, by close
    date), the last qualifications, the group tree, and the pipeline totals of the account."""
    contacts = sorted(
        Contact.objects.filter(account=account),
        key=lambda c: (PART_ORDER.get(c.selection_part, 99), c.name, c.pk),
    )
    opportunities = list(
        Opportunity.objects.visible_to(user)
        .filter(account=account)
        .select_related("stage", "owner", "playbook")
        .order_by("close_date", "id")
    )
    # Open deals first, then won, then lost; by close date within each (a stable sort).
    opportunities.sort(key=lambda o: STATUS_ORDER.get(o.status, 9))
    qualifications = list(
        account.qualifications.select_related("actor", "playbook").order_by("-at", "-id")[:10]
    )
    for qualification in qualifications:
        qualification.score = icp_score(qualification.results)  # type: ignore[attr-defined]
    stage = icp_stage(playbook)
    page = AccountPage(
        contacts=contacts,
        opportunities=opportunities,
        qualifications=qualifications,
        tree=visible_group_tree(user, account),
        icp_stage=stage,
        criteria={c.key: c for c in stage.criteria.all()} if stage else {},
    )
    for opp in opportunities:
        if opp.status == Status.OPEN:
            page.open_count += 1
            page.open_amount += opp.amount
        elif opp.status == Status.WON:
            page.won_count += 1
            page.won_amount += opp.amount
    return page


def icp_stage(playbook: Playbook) -> Any:
    """The playbook's account stage (stage 1, the ICP), or None. Its criteria by key let the
    page show stored qualification results in the reader's language (results keep the text of
    the language they were computed in)."""
    return next((s for s in playbook.ordered_stages() if s.kind == StageKind.ACCOUNT), None)


def parent_choices(user: Any, account: Account | None) -> list[Account]:
    """Accounts that may be chosen as the group of `account`: those `user` may see, minus the
    account itself, plus its current group even when hidden (so saving never drops it)."""
    qs = Account.objects.visible_to(user)
    if account is not None and account.pk:
        qs = qs.exclude(pk=account.pk)
        if account.parent_id:
            qs = qs | Account.objects.filter(pk=account.parent_id)
    return list(qs.only("pk", "name").order_by("name", "id").distinct())
