"""Errors the services raise. Each carries a stable `code` and a message in the active language.

Views, API handlers and CLI commands catch `LoudouError` and show `message`; the API maps `code`
to a problem+json response.
"""

from typing import Any


class LoudouError(Exception):
    """Base of every error a user can cause; never a bug."""

    code = "error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = str(message)
        self.details = details or {}

    def __str__(self) -> str:
        return self.message


class ValidationFailed(LoudouError):
    """Input that breaks a rule of the domain; `details` maps field names to messages."""

    code = "validation_failed"


class PermissionDenied(LoudouError):
    """The actor may see the object but may not do this to it."""

    code = "permission_denied"


class NotFound(LoudouError):
    """The object does not exist or the actor may not see it (the two are never told apart)."""

    code = "not_found"


class Conflict(LoudouError):
    """The object changed since the caller read it (stale `expected_version`)."""

    code = "conflict"

    def __init__(self, message: str, *, current_version: int) -> None:
        super().__init__(message, details={"current_version": current_version})
        self.current_version = current_version


class GateRefused(LoudouError):
    """A stage's criteria do not hold; `missing` lists them."""

    code = "gate_refused"

    def __init__(self, message: str, *, missing: list[dict[str, str]]) -> None:
        super().__init__(message, details={"missing": missing})
        self.missing = missing
