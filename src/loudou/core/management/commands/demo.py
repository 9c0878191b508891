"""`loudou demo [--seed N] [--size tiny|small|large] [--if-empty]`: a deterministic demo company.

Everything is made through the services (gates, 立项 approvals and overrides hold), with history
dated over the last two years. The same seed on the same day gives the same data.
"""

import argparse
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from loudou.core.cli import BarProgress
from loudou.demo import DEMO_PASSWORD, SIZES, DemoSummary, existing_data, generate

LOGINS = [
    ("admin", "administrator: sees everything; settings (Django admin) at /admin/"),
    ("manager", "王建国, 北京分公司 branch GM: approves Beijing's 立项, overrides gates"),
    ("seller", "李娜, 北京分公司 account manager: owns Beijing deals"),
    ("chen.zhiyuan", "陈志远, executive: reads every branch"),
]


class Command(BaseCommand):
    help = (
        "Fill an empty database with a deterministic demo company: branches, people, customers "
        "and two years of opportunities, made through the real services."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--seed", type=int, default=42, help="Random seed (default 42).")
        parser.add_argument(
            "--size",
            choices=list(SIZES),
            default="small",
            help="small (default, ~2,000 opportunities), large (~10,000, for benchmarks), "
            "tiny (for tests).",
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing (with a note) if the database already holds data.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        existing = existing_data()
        if existing:
            listed = ", ".join(f"{n} {name}" for name, n in existing.items())
            if options["if_empty"]:
                self.stdout.write(f"The database already holds data ({listed}); no demo made.")
                return
            raise CommandError(
                f"The database already holds data ({listed}). The demo fills an empty database "
                "only, so nothing was changed. Start from a fresh database (delete the SQLite "
                "file, then `loudou migrate`), or pass --if-empty to skip quietly."
            )
        started = time.monotonic()
        stderr = Console(stderr=True)
        columns = (
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=stderr, transient=False) as bar:
            summary = generate(
                seed=options["seed"], size=options["size"], progress=BarProgress(bar)
            )
            learned = self._learn(bar)
        self._report(summary, options, time.monotonic() - started)
        self.stdout.write(learned)

    def _learn(self, bar: Progress) -> str:
        """Train the default playbook's win model on the demo's closed deals, so the model page,
        the deal panels and the learned forecast have something to show; a demo too small to
        learn from keeps the stage defaults (and says so)."""
        from loudou.core.errors import ValidationFailed
        from loudou.learning.services import win_model_train
        from loudou.playbooks.models import Playbook

        task = bar.add_task("Learning win probabilities", total=1)
        playbook = Playbook.objects.get(is_default=True, is_current=True)
        try:
            model = win_model_train(playbook=playbook, actor=None)
        except ValidationFailed:
            bar.update(task, completed=1)
            return "Win model: too few closed deals to learn from; stage defaults are used."
        bar.update(task, completed=1)
        used = model.parameters.get("used", "logistic")
        return (
            f"Win model: trained on {model.training_deals} closed deals, evaluated on "
            f"{model.evaluation_deals} later ones; predictions use {used.replace('_', ' ')} "
            "(loudou model evaluate)."
        )

    def _report(self, summary: DemoSummary, options: dict[str, Any], seconds: float) -> None:
        status = summary.by_status
        stages = ", ".join(f"{key} {n}" for key, n in summary.open_by_stage.items())
        lines = [
            f"Demo company made (seed {options['seed']}, size {options['size']}) "
            f"in {seconds:.1f} s:",
            f"  {summary.branches} branches, {summary.users} people",
            f"  {summary.accounts} accounts, {summary.target_accounts} of them target accounts",
            f"  {summary.opportunities} opportunities: {status['open']} open, "
            f"{status['won']} won, {status['lost']} lost",
            f"  open by stage: {stages}",
            f"  won: CNY {summary.won_amount:,.2f}",
            f"  {summary.targets} monthly targets",
            "",
            f"Log in as (every demo user's password is {DEMO_PASSWORD}):",
        ]
        lines += [f"  {username:<13} {what}" for username, what in LOGINS]
        self.stdout.write("\n".join(lines))
