"""Writes to API tokens: create (the secret is returned once), revoke, and the stamp of use."""

import datetime as dt
import hashlib
import secrets
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from loudou.api.models import ApiToken
from loudou.core import clock
from loudou.core.audit import audit
from loudou.core.errors import NotFound, ValidationFailed
from loudou.org.models import AccessLevel

SECRET_PREFIX = "ldt_"
PREFIX_LENGTH = 12  # "ldt_" and 8 random characters: enough to tell a user's tokens apart
MAX_ACTIVE_TOKENS = 50
# Stamping every request would make each read a write; a minute is precise enough to tell
# an unused token from one in use.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def secret_hash(secret: str) -> str:
    """The SHA-256 of a token secret, as stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@transaction.atomic
def token_create(*, actor: Any, name: str) -> tuple[ApiToken, str]:
    """Make a personal API token for `actor`; returns the token and its secret, which is never
    stored and cannot be shown again."""
    if not getattr(actor, "pk", None):
        raise ValidationFailed(_("API tokens belong to a user."), details={"user": "required"})
    clean = (name or "").strip()
    if not clean:
        raise ValidationFailed(_("Name the token."), details={"name": "required"})
    if len(clean) > 100:
        raise ValidationFailed(
            _("A token name has at most 100 characters."), details={"name": "too_long"}
        )
    if ApiToken.objects.active().filter(user_id=actor.pk).count() >= MAX_ACTIVE_TOKENS:
        raise ValidationFailed(
            _("You have %(n)s active tokens; revoke one first.") % {"n": MAX_ACTIVE_TOKENS},
            details={"name": "too_many"},
        )
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user_id=actor.pk,
        name=clean,
        prefix=secret[:PREFIX_LENGTH],
        key_hash=secret_hash(secret),
        created_at=clock.now(),
    )
    audit("token.create", token, actor=actor, after={"name": token.name, "prefix": token.prefix})
    return token, secret


@transaction.atomic
def token_revoke(*, actor: Any, token: ApiToken | int) -> ApiToken:
    """Revoke a token: one's own, or anyone's for an administrator. Others' tokens are not found."""
    pk = token if isinstance(token, int) else token.pk
    found = ApiToken.objects.select_for_update().filter(pk=pk).first()
    is_admin = getattr(actor, "level", None) == AccessLevel.ADMIN
    if found is None or (found.user_id != getattr(actor, "pk", None) and not is_admin):
        raise NotFound(_("No such API token."))
    if found.revoked_at is not None:
        raise ValidationFailed(
            _("The token “%(name)s” is already revoked.") % {"name": found.name},
            details={"token": "revoked"},
        )
    found.revoked_at = clock.now()
    found.save(update_fields=["revoked_at"])
    audit(
        "token.revoke",
        found,
        actor=actor,
        before={"revoked_at": None},
        after={"revoked_at": found.revoked_at.isoformat(), "user": found.user_id},
    )
    return found


def token_authenticate(secret: str) -> ApiToken | None:
    """The active token of an active user with this secret, stamped as used; None otherwise."""
    if not secret or not secret.startswith(SECRET_PREFIX) or len(secret) > 200:
        return None
    token = (
        ApiToken.objects.active()
        .select_related("user", "user__branch")
        .filter(key_hash=secret_hash(secret), user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = clock.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
