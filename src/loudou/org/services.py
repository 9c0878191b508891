"""Writes to the organisation: branches, users and their roles, targets."""

import datetime as dt
from typing import Any

from django.contrib.auth.hashers import identify_hasher
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from loudou.core.audit import audit, snapshot
from loudou.core.errors import PermissionDenied, ValidationFailed
from loudou.core.money import parse_amount, validate_currency
from loudou.core.text import require_fits
from loudou.org.access import require_manager_of
from loudou.org.models import AccessLevel, Branch, Target, TargetScope, User
from loudou.playbooks.models import Role


def _require_admin(actor: Any, what: str) -> None:
    if actor is not None and getattr(actor, "level", None) != AccessLevel.ADMIN:
        raise PermissionDenied(_("Only an administrator may %(what)s.") % {"what": what})


@transaction.atomic
def branch_create(
    *, actor: Any, code: str, name: str, name_en: str = "", parent: Branch | None = None
) -> Branch:
    """Add a branch or team under `parent` (administrators; None actor = system setup)."""
    _require_admin(actor, _("create branches"))
    if not code.strip() or not name.strip():
        raise ValidationFailed(_("A branch needs a code and a name."))
    if Branch.objects.filter(code=code).exists():
        raise ValidationFailed(
            _("A branch with code %(c)s exists.") % {"c": code}, details={"code": "duplicate"}
        )
    branch = Branch.objects.create(
        code=code, name=name.strip(), name_en=name_en.strip(), parent=parent
    )
    audit("branch.create", branch, actor=actor, after=snapshot(branch, ["code", "name", "parent"]))
    return branch


@transaction.atomic
def branch_update(
    *,
    actor: Any,
    branch: Branch,
    name: str | None = None,
    name_en: str | None = None,
    parent: Any = ...,
) -> Branch:
    """Rename a branch or move it under another parent (administrators); a branch never moves
    below itself or one of its own branches."""
    from loudou.org.access import branch_subtree_ids

    _require_admin(actor, _("change branches"))
    fields = ["code", "name", "name_en", "parent"]
    branch = Branch.objects.select_for_update().get(pk=branch.pk)
    before = snapshot(branch, fields)
    if name is not None:
        if not name.strip():
            raise ValidationFailed(_("A branch needs a name."), details={"name": "required"})
        branch.name = name.strip()
    if name_en is not None:
        branch.name_en = name_en.strip()
    if parent is not ...:
        if isinstance(parent, Branch) and parent.pk in branch_subtree_ids(branch.pk):
            raise ValidationFailed(
                _("A branch cannot sit below itself or one of its own branches."),
                details={"parent": "cycle"},
            )
        branch.parent = parent  # type: ignore[assignment]
    branch.save()
    audit("branch.update", branch, actor=actor, before=before, after=snapshot(branch, fields))
    return branch


@transaction.atomic
def user_create(
    *,
    actor: Any,
    username: str,
    password: str,
    display_name: str = "",
    branch: Branch | None = None,
    job_role: str | None = None,
    access_level: str = AccessLevel.SELLER,
    language: str = "",
    email: str = "",
    check_password: bool = True,
    password_hash: str | None = None,
) -> User:
    """Create a user with a job role (a playbook role key), an access level and a branch.

    `password_hash` is an already-hashed password (Django's format) for imports and the demo; it
    is used instead of hashing `password` again."""
    _require_admin(actor, _("create users"))
    if User.objects.filter(username=username).exists():
        raise ValidationFailed(
            _("The user name %(u)s is taken.") % {"u": username}, details={"username": "duplicate"}
        )
    if access_level not in AccessLevel.values:
        raise ValidationFailed(_("Unknown access level %(v)s.") % {"v": access_level})
    role = _role(job_role)
    user = User(
        username=username,
        display_name=display_name,
        branch=branch,
        job_role=role,
        access_level=access_level,
        language=language,
        email=email,
        is_staff=access_level == AccessLevel.ADMIN,
        is_superuser=access_level == AccessLevel.ADMIN,
    )
    require_fits(user, "display_name", "email")
    if check_password and password_hash is None:
        try:
            validate_password(password, user)
        except DjangoValidationError as exc:
            raise ValidationFailed(
                " ".join(exc.messages), details={"password": exc.messages}
            ) from None
    if password_hash is not None:
        try:
            identify_hasher(password_hash)
        except ValueError:
            raise ValidationFailed(_("The password hash is not in a known format.")) from None
        user.password = password_hash
    else:
        user.set_password(password)
    user.save()
    audit(
        "user.create",
        user,
        actor=actor,
        after=snapshot(user, ["username", "branch", "job_role", "access_level"]),
    )
    return user


def _role(key: str | None) -> Role | None:
    if not key:
        return None
    role = Role.objects.filter(key=key).first()
    if role is None:
        raise ValidationFailed(
            _("Unknown role %(r)s.") % {"r": key}, details={"job_role": "unknown"}
        )
    return role


@transaction.atomic
def user_set_role(
    *,
    actor: Any,
    user: User,
    job_role: str | None = None,
    access_level: str | None = None,
    branch: Branch | None = None,
) -> User:
    """Change a user's job role, access level or branch (administrators only; audited)."""
    _require_admin(actor, _("change roles"))
    fields = ["job_role", "access_level", "branch"]
    before = snapshot(user, fields)
    if job_role is not None:
        user.job_role = _role(job_role)
    if access_level is not None:
        if access_level not in AccessLevel.values:
            raise ValidationFailed(_("Unknown access level %(v)s.") % {"v": access_level})
        user.access_level = access_level
    if branch is not None:
        user.branch = branch
    user.save(update_fields=fields)
    audit("user.role_change", user, actor=actor, before=before, after=snapshot(user, fields))
    return user


@transaction.atomic
def user_set_preferences(
    *, actor: Any, user: User, language: str | None = None, time_zone: str | None = None
) -> User:
    """A user's own language ("" follows the browser) and time zone; only they or an admin."""
    import zoneinfo

    if actor is not None and actor.pk != user.pk:
        _require_admin(actor, _("change another person's preferences"))
    fields = ["language", "time_zone"]
    before = snapshot(user, fields)
    if language is not None:
        if language not in {"", "zh-hans", "en"}:
            raise ValidationFailed(
                _("Unknown language %(v)s.") % {"v": language}, details={"language": "unknown"}
            )
        user.language = language
    if time_zone is not None:
        if time_zone not in zoneinfo.available_timezones():
            raise ValidationFailed(
                _("Unknown time zone %(v)s.") % {"v": time_zone}, details={"time_zone": "unknown"}
            )
        user.time_zone = time_zone
    user.save(update_fields=fields)
    audit("user.preferences", user, actor=actor, before=before, after=snapshot(user, fields))
    return user


@transaction.atomic
def user_change_password(*, actor: Any, user: User, current: str, new: str, repeat: str) -> User:
    """A user's own new password: the current one must be right, the new one must pass the
    password rules and be typed twice. Audited (without the passwords). Every other session of
    the user ends, since Django ties sessions to the password hash."""
    if actor is None or actor.pk != user.pk:
        raise PermissionDenied(_("Only the user may change their own password here."))
    if not user.check_password(current):
        raise ValidationFailed(
            _("The current password is not right."),
            details={"current": _("The current password is not right.")},
        )
    if new != repeat:
        raise ValidationFailed(
            _("The two new passwords differ."),
            details={"repeat": _("The two new passwords differ.")},
        )
    try:
        validate_password(new, user)
    except DjangoValidationError as exc:
        message = " ".join(exc.messages)
        raise ValidationFailed(message, details={"new": message}) from exc
    user.set_password(new)
    user.save(update_fields=["password"])
    audit("user.password_change", user, actor=actor)
    return user


@transaction.atomic
def target_set(
    *,
    actor: Any,
    month: dt.date,
    amount: Any,
    currency: str = "",
    user: User | None = None,
    branch: Branch | None = None,
) -> Target:
    """Set the month's target (业绩目标) of a person, a branch or (neither) the company."""
    if user is not None and branch is not None:
        raise ValidationFailed(_("A target is for a person, a branch or the company, not two."))
    scope = TargetScope.USER if user else TargetScope.BRANCH if branch else TargetScope.COMPANY
    if actor is not None:
        if scope == TargetScope.COMPANY:
            _require_admin(actor, _("set the company's target"))
        else:
            require_manager_of(actor, (user.branch_id if user else branch.pk), _("set targets"))  # type: ignore[union-attr]
    month = month.replace(day=1)
    value = parse_amount(amount)
    existing = Target.objects.filter(scope=scope, user=user, branch=branch, month=month).first()
    fields = ["scope", "user", "branch", "month", "amount", "currency"]
    before = snapshot(existing, fields) if existing else None
    target, _created = Target.objects.update_or_create(
        scope=scope,
        user=user,
        branch=branch,
        month=month,
        defaults={"amount": value, "currency": validate_currency(currency)},
    )
    audit("target.set", target, actor=actor, before=before, after=snapshot(target, fields))
    return target
