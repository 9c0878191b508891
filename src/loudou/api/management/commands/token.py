"""`loudou token create|list|revoke --as USER`: personal API tokens at the command line."""

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from loudou.api.models import ApiToken
from loudou.api.services import token_create, token_revoke
from loudou.core.cli import activate_language, dump_json, resolve_actor
from loudou.core.errors import LoudouError


def token_row(token: ApiToken) -> dict[str, Any]:
    """A token as listed: never its secret (which is not stored)."""
    return {
        "id": token.pk,
        "name": token.name,
        "prefix": token.prefix,
        "user": token.user.username,
        "created_at": token.created_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    }


class Command(BaseCommand):
    help = (
        "Create, list or revoke personal API tokens (Authorization: Bearer …). A new token's "
        "secret is printed once and never stored."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--as", dest="as_user", help="The token owner (required).")
        parser.add_argument("--json", action="store_true", help="Print one JSON document.")
        parser.add_argument("--lang", choices=["zh-hans", "en"])
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Make a token; its secret is shown once.")
        create.add_argument("name", help="What the token is for, e.g. “Excel sync”.")
        lst = sub.add_parser("list", help="Your tokens (administrators: --all for everyone's).")
        lst.add_argument("--all", action="store_true", help="Every user's tokens (admins).")
        revoke = sub.add_parser("revoke", help="Revoke a token by id.")
        revoke.add_argument("id", type=int)
        # `loudou token create --as USER NAME` reads naturally: accept the common options after
        # the action too (SUPPRESS keeps a subparser from resetting what came before it).
        for action in (create, lst, revoke):
            action.add_argument("--as", dest="as_user", default=argparse.SUPPRESS)
            action.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
            action.add_argument("--lang", choices=["zh-hans", "en"], default=argparse.SUPPRESS)

    def handle(self, *args: Any, **options: Any) -> None:
        activate_language(options["lang"])
        if not options["as_user"]:
            raise CommandError("Tokens belong to a user: name them with --as USER.")
        actor = resolve_actor(options["as_user"])
        try:
            getattr(self, f"_{options['action']}")(actor, options)
        except LoudouError as exc:
            raise CommandError(exc.message) from None

    def _create(self, actor: Any, options: dict[str, Any]) -> None:
        token, secret = token_create(actor=actor, name=options["name"])
        if options["json"]:
            self.stdout.write(dump_json(token_row(token) | {"secret": secret}))
            return
        self.stdout.write(f"token {token.pk} “{token.name}” for {actor.username}:")
        self.stdout.write(secret)
        self.stdout.write(
            "Copy it now: it is not stored and cannot be shown again. "
            "Send it as “Authorization: Bearer <token>”."
        )

    def _list(self, actor: Any, options: dict[str, Any]) -> None:
        tokens = ApiToken.objects.select_related("user")
        if not (options["all"] and actor.level == "admin"):
            tokens = tokens.filter(user=actor)
        rows = [token_row(t) for t in tokens.order_by("-created_at", "-id")]
        if options["json"]:
            self.stdout.write(dump_json(rows))
            return
        for r in rows:
            state = "revoked" if r["revoked_at"] else "active"
            used = r["last_used_at"].isoformat() if r["last_used_at"] else "never used"
            self.stdout.write(
                f"{r['id']:6} {r['prefix']}…  {r['name']}  ({r['user']}, {state}, {used})"
            )

    def _revoke(self, actor: Any, options: dict[str, Any]) -> None:
        token = token_revoke(actor=actor, token=options["id"])
        self.stdout.write(f"revoked token {token.pk} “{token.name}”")
