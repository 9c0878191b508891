"""What every Import page test runs with: its uploads under a temporary folder, and each
confirmed import run at once in the request."""

from pathlib import Path
from typing import Any

import pytest

from loudou.interop import runs


@pytest.fixture(autouse=True)
def _uploads_and_runner(settings: Any, tmp_path: Path, monkeypatch: Any) -> None:
    """Uploads under a temporary folder; the confirmed import runs at once in the request (the
    test's transaction cannot be shared with a thread's connection: see the thread test)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setattr(runs, "RUNNER", lambda job: job())
