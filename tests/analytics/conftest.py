"""Fixtures of the analytics tests."""

from typing import Any

import pytest

from loudou.analytics import parallel


@pytest.fixture
def read_calls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each `parallel.run_reads` call of the test ran on two connections, in order."""
    calls: list[bool] = []
    run_reads = parallel.run_reads

    def spy(reads: Any, using: str, *, parallel: bool) -> Any:
        calls.append(parallel)
        return run_reads(reads, using, parallel=parallel)

    monkeypatch.setattr(parallel, "run_reads", spy)
    return calls
