"""Shared fixtures and the needs_root skip rule."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests explore the same examples on every run (CI must not be flaky);
# HYPOTHESIS_PROFILE=explore draws new ones.
settings.register_profile("default", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config, items):
    """Skip needs_root tests, with the reason, where root or the kernel feature is missing."""
    reason = None
    if os.geteuid() != 0:
        reason = "needs root (netns, tc, cgroups)"
    elif shutil.which("ip") is None or shutil.which("tc") is None:
        reason = "needs iproute2 (ip, tc)"
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "needs_root" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def data_dir() -> Path:
    return DATA
