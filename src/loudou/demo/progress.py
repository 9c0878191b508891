"""How the generator reports its progress: the command draws a bar, tests stay silent."""

from typing import Protocol


class Progress(Protocol):
    """Told when a phase starts (with its number of steps) and as steps finish."""

    def start(self, phase: str, total: int) -> None: ...

    def advance(self, steps: int = 1) -> None: ...


class Silent:
    """Progress that reports nothing."""

    def start(self, phase: str, total: int) -> None:
        del phase, total

    def advance(self, steps: int = 1) -> None:
        del steps
