"""Shared fixtures: where the real CT samples live, and how to skip cleanly without them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CTAR_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


def shared_sample(relative: str) -> Path:
    """Path of a real CT sample, or skip the test saying which sample is missing."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"real CT sample {relative} not found under {SHARED_DATA} (shared data folder absent)")
    return path


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent; real-CT tests need it")
    return SHARED_DATA
