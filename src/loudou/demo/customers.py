"""The demo's customers: groups with their subsidiaries and standalone enterprises, qualified
against the ICP (stage 1) by the real services, with the contacts of their selection teams."""

import datetime as dt
import random
from dataclasses import dataclass

from loudou.core import clock
from loudou.customers.credit_code import ALPHABET, check_character
from loudou.customers.models import Account
from loudou.customers.services import account_create, account_qualify, contact_create
from loudou.demo import names
from loudou.demo.organisation import SalesOrg
from loudou.demo.progress import Progress
from loudou.demo.timeline import office_moment
from loudou.org.models import User

OTHER_CITIES = ["苏州", "无锡", "武汉", "成都", "重庆", "西安", "沈阳", "青岛", "郑州", "长沙"]
SIZES = {  # size band → (employees range, revenue range in CNY)
    "large": ((2000, 30000), (2_000_000_000, 50_000_000_000)),
    "medium": ((300, 2000), (200_000_000, 2_000_000_000)),
    "small": ((50, 300), (20_000_000, 200_000_000)),
    "micro": ((5, 50), (1_000_000, 20_000_000)),
}


@dataclass
class Customer:
    """An account as the deal generator sees it: when it appeared and how many deals it draws."""

    account: Account
    branch_code: str
    created: dt.datetime
    weight: float


@dataclass
class Profile:
    """What we decide about an account before creating it."""

    industry: str
    size_band: str
    organisations: int
    it_need: bool
    product_fit: bool


class CustomerFactory:
    """Creates the demo's accounts through `account_create`, one group or enterprise at a time."""

    def __init__(self, org: SalesOrg, rng: random.Random, start: dt.date, today: dt.date) -> None:
        self.org = org
        self.rng = rng
        self.start = start
        self.today = today
        self.codes: set[str] = set()
        self.names: set[str] = set()
        self.customers: list[Customer] = []
        self.count = 0

    def create(self, count: int, progress: Progress) -> list[Customer]:
        """`count` accounts, spread over the branches by their number of sellers."""
        seats = [code for code, sellers in self.org.sellers.items() for _ in sellers]
        self.count = count
        while len(self.customers) < count:
            branch_code = self.rng.choice(seats)
            before = len(self.customers)
            if self.rng.random() < 0.5:
                self._group(branch_code)
            else:
                self._standalone(branch_code)
            progress.advance(len(self.customers) - before)
        return self.customers

    # --- one customer ---------------------------------------------------------------------

    def _created_at(self) -> dt.datetime:
        """Most customers were in the system before the demo's two years; some came later."""
        if self.rng.random() < 0.85:
            day = self.start - dt.timedelta(days=self.rng.randint(1, 60))
        else:
            span = (self.today - self.start).days - 60
            day = self.start + dt.timedelta(days=self.rng.randint(0, span))
        return office_moment(day, self.rng)

    def _group(self, branch_code: str) -> None:
        rng = self.rng
        icp = rng.random() < 0.88
        industry = rng.choice(names.ICP_INDUSTRIES if icp else names.OTHER_INDUSTRIES)
        brand, _domain = rng.choice(names.BRANDS)
        group_word, sub_words = names.INDUSTRY_WORDS[industry]
        owner = rng.choice(self.org.sellers[branch_code])
        created = self._created_at()
        profile = Profile(
            industry,
            "large",
            rng.randint(5, 60),
            it_need=rng.random() < 0.95,
            product_fit=rng.random() < 0.92,
        )
        city = self._city(branch_code)
        overridden = not icp and profile.it_need and profile.product_fit and rng.random() < 0.3
        parent = self._account(
            f"{city}{brand}{group_word}集团有限公司",
            profile,
            owner,
            branch_code,
            created,
            3.0,
            overridden=overridden,
        )
        if parent is None:
            return
        for _ in range(min(rng.randint(1, 4), self.count - len(self.customers))):
            created += dt.timedelta(minutes=rng.randint(5, 120))
            sub = Profile(
                industry,
                rng.choice(["large", "medium", "medium"]),
                rng.choice([1, 2, 2, 3, 4, 5, 6, 8]),
                it_need=rng.random() < 0.95,
                product_fit=rng.random() < 0.92,
            )
            name = f"{rng.choice(OTHER_CITIES)}{brand}{rng.choice(sub_words)}有限公司"
            self._account(name, sub, owner, branch_code, created, 1.5, parent=parent)

    def _standalone(self, branch_code: str) -> None:
        rng = self.rng
        icp = rng.random() < 0.75
        industry = rng.choice(names.ICP_INDUSTRIES if icp else names.OTHER_INDUSTRIES)
        brand, _domain = rng.choice(names.BRANDS)
        _group_word, sub_words = names.INDUSTRY_WORDS[industry]
        size = rng.choice(["large", "medium", "medium", "medium", "small"])
        profile = Profile(
            industry,
            size,
            rng.choice([1, 2, 3, 5]) if size in ("large", "medium") else 1,
            it_need=rng.random() < 0.9,
            product_fit=rng.random() < 0.85,
        )
        name = f"{self._city(branch_code)}{brand}{rng.choice(sub_words)}股份有限公司"
        owner = rng.choice(self.org.sellers[branch_code])
        self._account(name, profile, owner, branch_code, self._created_at(), 1.0)

    def _city(self, branch_code: str) -> str:
        return next(b[4] for b in names.BRANCHES if b[0] == branch_code)

    def _account(
        self,
        name: str,
        profile: Profile,
        owner: User,
        branch_code: str,
        created: dt.datetime,
        weight: float,
        parent: Account | None = None,
        overridden: bool = False,
    ) -> Account | None:
        if name in self.names:
            return None
        self.names.add(name)
        rng = self.rng
        employees, revenue = SIZES[profile.size_band]
        data = {
            "name": name,
            "industry": profile.industry,
            "size_band": profile.size_band,
            "employees": rng.randint(*employees),
            "revenue": rng.randrange(revenue[0], revenue[1], 1_000_000),
            "revenue_currency": "CNY",
            "organisations_count": profile.organisations,
            "it_need": rng.choice(names.IT_NEEDS) if profile.it_need else "",
            "product_fit": rng.choice(names.PRODUCT_FITS) if profile.product_fit else "",
            "parent": parent,
        }
        if rng.random() < 0.93:  # a few were entered before anyone looked the code up
            data["credit_code"] = self._credit_code(branch_code)
        with clock.frozen_at(created):
            account = account_create(actor=owner, owner=owner, **data)
        if overridden:
            self._override_to_target(account, branch_code, created)
        with clock.frozen_at(created + dt.timedelta(minutes=5)):
            self._contacts(account, owner)
        self.customers.append(Customer(account, branch_code, created, weight))
        return account

    def _override_to_target(self, account: Account, branch_code: str, created: dt.datetime) -> None:
        """A branch manager qualifies a non-ICP group as a target anyway, with a reason."""
        with clock.frozen_at(created + dt.timedelta(minutes=3)):
            account_qualify(
                account=account,
                actor=self.org.branch_gm(branch_code),
                override=True,
                reason="多业态、多组织集团，集团管控需求与我方方案高度契合，特批为目标客户",
            )

    def _contacts(self, account: Account, owner: User) -> None:
        """A selection team with a decision maker for most accounts worth selling to."""
        rng = self.rng
        if account.is_target or rng.random() < 0.3:
            roles = [rng.choice(names.CONTACT_ROLES[:3])]
            roles += rng.sample(names.CONTACT_ROLES[3:], rng.randint(1, 3))
        else:
            roles = [(title, "") for title, _part in rng.sample(names.CONTACT_ROLES[3:], 2)]
        for title, part in roles:
            contact_create(
                account=account,
                actor=owner,
                name=rng.choice(names.SURNAMES) + rng.choice(names.GIVEN_NAMES),
                title=title,
                phone=f"1{rng.choice('3589')}{rng.randrange(10**9):09d}",
                selection_part=part,
            )

    def _credit_code(self, branch_code: str) -> str:
        """A valid 统一社会信用代码: 9 (工商) 1 (企业), district, organisation code, check."""
        districts = next(b[5] for b in names.BRANCHES if b[0] == branch_code)
        while True:
            body = "".join(self.rng.choice("0123456789") for _ in range(8))
            first17 = f"91{self.rng.choice(districts)}{body}{_organisation_check(body)}"
            code = first17 + check_character(first17)
            if code not in self.codes:
                self.codes.add(code)
                return code


def _organisation_check(body: str) -> str:
    """The check character of an 8-digit organisation code (GB 11714)."""
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(ch) * w for ch, w in zip(body, weights, strict=True))
    check = 11 - total % 11
    char = {10: "X", 11: "0"}.get(check, str(check))
    assert char in ALPHABET
    return char
