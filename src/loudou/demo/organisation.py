"""Our demo company: the branch tree, the people in their roles, and their monthly targets."""

import datetime as dt
import functools
import random
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth.hashers import make_password

from loudou.core import clock
from loudou.demo import names
from loudou.demo.timeline import last_moment, office_moment
from loudou.org.models import Branch, User
from loudou.org.services import branch_create, target_set, user_create

DEMO_PASSWORD = "loudou-demo"


@dataclass
class SalesOrg:
    """The demo organisation as the generator uses it: branches and people by code and role."""

    company: Branch
    regions: dict[str, Branch]
    branches: dict[str, Branch]
    users: dict[str, User]
    sellers: dict[str, list[User]] = field(default_factory=dict)  # account managers by branch
    admin: User | None = None

    def branch_gm(self, branch_code: str) -> User:
        return next(
            u
            for u in self.users.values()
            if u.branch_id == self.branches[branch_code].pk and u.access_level == "manager"
        )

    def region_of(self, branch_code: str) -> Branch:
        branch = self.branches[branch_code]
        return next(r for r in self.regions.values() if r.pk == branch.parent_id)

    def sales_director(self, branch_code: str) -> User:
        region = self.region_of(branch_code)
        return next(u for u in self.users.values() if u.branch_id == region.pk)

    def in_role(self, role: str, branch: Branch | None = None) -> list[User]:
        return [
            u
            for u in self.users.values()
            if u.job_role is not None
            and u.job_role.key == role
            and (branch is None or u.branch_id == branch.pk)
        ]


def organisation_create(start: dt.datetime) -> SalesOrg:
    """Company → regions → branches, and the people, as an administrator set them up."""
    with clock.frozen_at(start):
        code, name, name_en = names.COMPANY
        company = branch_create(actor=None, code=code, name=name, name_en=name_en)
        admin = _person(names.PEOPLE[0], {code: company}, actor=None)
        regions = {
            c: branch_create(actor=admin, code=c, name=n, name_en=e, parent=company)
            for c, n, e in names.REGIONS
        }
        branches = {
            c: branch_create(actor=admin, code=c, name=n, name_en=e, parent=regions[region])
            for c, n, e, region, _city, _districts in names.BRANCHES
        }
        all_branches = {code: company, **regions, **branches}
        users = {"admin": admin}
        for person in names.PEOPLE[1:]:
            user = _person(person, all_branches, actor=admin)
            users[user.username] = user
    org = SalesOrg(company, regions, branches, users, admin=admin)
    for code in branches:
        org.sellers[code] = org.in_role("account_manager", branches[code])
    return org


@functools.cache
def _demo_password_hash() -> str:
    """PBKDF2 takes most of a second per hash here: hash the shared demo password once."""
    return make_password(DEMO_PASSWORD)


def _person(
    person: tuple[str, str, str, str, str], branches: dict[str, Branch], actor: User | None
) -> User:
    username, display, branch_code, role, level = person
    return user_create(
        actor=actor,
        username=username,
        password=DEMO_PASSWORD,
        password_hash=_demo_password_hash(),
        display_name=display,
        branch=branches[branch_code],
        job_role=role or None,
        access_level=level,
        email=f"{username}@loudou.example",
        check_password=False,
    )


def add_months(month: dt.date, n: int) -> dt.date:
    """The first day of the month `n` months after `month`'s (before, if negative)."""
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def months(first: dt.date, last: dt.date) -> list[dt.date]:
    """The first days of the months from `first`'s month to `last`'s month, inclusive."""
    out, month = [], first.replace(day=1)
    while month <= last:
        out.append(month)
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return out


def targets_set(
    org: SalesOrg,
    *,
    today: dt.date,
    months_around: tuple[int, int],
    monthly_bookings: Decimal,
    rng: random.Random,
) -> int:
    """业绩目标 for every account manager, branch, region and the company, `months_around` =
    (months before, months after) this one, set by the managers ahead of each year, growing
    about 15 % a year; return how many were set."""
    before, after = months_around
    this_month = today.replace(day=1)
    first, last = add_months(this_month, -before), add_months(this_month, after)
    horizon = last_moment(today)
    per_seller = {code: len(people) for code, people in org.sellers.items()}
    sellers_total = sum(per_seller.values())
    count = 0
    for month in months(first, last):
        growth = Decimal("1.15") ** Decimal((month - today).days / 365)
        seasonal = Decimal("1.6") if month.month in (6, 12) else Decimal("1.0")
        # Targets sit a little above what the team books on average: stretch goals.
        company_amount = _round(monthly_bookings * Decimal("1.2") * growth * seasonal)
        set_at = min(office_moment(month.replace(month=1) - dt.timedelta(days=20), rng), horizon)
        with clock.frozen_at(set_at):
            target_set(actor=org.admin, month=month, amount=company_amount)
            count += 1
            for region in org.regions.values():
                region_sellers = sum(
                    n for code, n in per_seller.items() if org.branches[code].parent_id == region.pk
                )
                share = company_amount * region_sellers / sellers_total
                target_set(actor=org.admin, month=month, branch=region, amount=_round(share))
                count += 1
            for code, sellers in org.sellers.items():
                branch_amount = company_amount * len(sellers) / sellers_total
                director = org.sales_director(code)
                target_set(
                    actor=director,
                    month=month,
                    branch=org.branches[code],
                    amount=_round(branch_amount),
                )
                count += 1
                gm = org.branch_gm(code)
                for seller in sellers:
                    personal = branch_amount / len(sellers) * Decimal(rng.uniform(0.85, 1.15))
                    target_set(actor=gm, month=month, user=seller, amount=_round(personal))
                    count += 1
    return count


def _round(amount: Decimal) -> Decimal:
    """Targets are set in round hundreds of thousands."""
    return (amount / 100000).quantize(Decimal(1)) * 100000
