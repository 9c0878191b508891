"""Shared pieces of the `loudou` commands: who the command acts as, JSON output, errors."""

import contextlib
import gc
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from django.core.management.base import CommandError
from django.utils import translation

from loudou.org.models import AccessLevel, User


class SystemActor:
    """The operator at the command line with no --as: sees everything, records no user."""

    pk = None
    id = None
    is_authenticated = True
    is_active = True
    is_superuser = True
    sees_everything = True
    level = AccessLevel.ADMIN
    branch_id = None
    username = "system"

    def __str__(self) -> str:
        return "system"


def resolve_actor(username: str | None) -> Any:
    """The user named by --as, or the system actor."""
    if not username:
        return SystemActor()
    user = User.objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"No user named {username!r}.")
    return user


def activate_language(code: str | None) -> None:
    """Use --lang (zh-hans or en) for the messages and texts a command prints."""
    if code:
        if code not in {"zh-hans", "en"}:
            raise CommandError("--lang takes zh-hans or en")
        translation.activate(code)


def dump_json(data: Any) -> str:
    """One JSON document: decimals as strings, dates ISO 8601, Chinese unescaped."""

    def default(value: Any) -> Any:
        if isinstance(value, Decimal):
            return str(value)
        if hasattr(value, "isoformat"):
            return value.isoformat()
        raise TypeError(type(value).__name__)

    return json.dumps(data, ensure_ascii=False, indent=2, default=default)


class BarProgress:
    """A long command's progress (the `Progress` protocol of importers and dumps: start a phase,
    advance) as a rich bar per phase, on stderr."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.task: Any = None

    def start(self, phase: str, total: int) -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=self.bar.tasks[-1].total)
        self.task = self.bar.add_task(phase, total=total)

    def advance(self, steps: int = 1) -> None:
        self.bar.advance(self.task, steps)


def progress_bar(label_width: int = 14) -> Any:
    """A transient rich progress display on stderr, silent when stderr is not a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    return Progress(
        TextColumn(f"{{task.description:<{label_width}}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for a long command (an import): reading a file makes
    millions of small objects that live until the end, and the collector walks them again and
    again (a fifth of an import of 50,000 deals: docs/performance.md). They form no cycles to
    collect, so collection waits until the command is done. Only for commands, which run alone in
    their process; the web import runs in a server process's thread and leaves it on."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
