"""`loudou analytics rebuild|verify`: the caches analytics keeps beside history."""

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from loudou.analytics.caches import caches_rebuild, caches_verify


class Command(BaseCommand):
    help = (
        "Rebuild the analytics caches (stage stays, state spans) from history, or verify them "
        "(and the current fields) against it."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("rebuild", help="Recompute the stays and spans from the whole history.")
        sub.add_parser(
            "verify", help="Compare the stays, the spans and the current fields with history."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "rebuild":
            counts = caches_rebuild()
            self.stdout.write(
                f"rebuilt from history: {counts['stays']} stays, {counts['spans']} state spans"
            )
            return
        problems = caches_verify()
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"{len(problems)} inconsistencies between the caches and history.")
        self.stdout.write("analytics caches agree with history")
