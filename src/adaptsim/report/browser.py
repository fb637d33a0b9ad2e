"""Opening reports in a real headless Chromium (Debian's), for tests and measurements.

Playwright cannot download its own browser builds here, so its Python package
drives the system's ``chromium`` through ``executable_path``, with a fresh
user-data-dir and every background network feature off: a report page then makes
no request of its own, and any request it does make is the page's fault.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["CHROMIUM_FLAGS", "chromium", "missing", "open_browser"]

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium() -> Path:
    """The system Chromium (``chromium`` on PATH, else Debian's /usr/bin/chromium)."""
    return Path(shutil.which("chromium") or "/usr/bin/chromium")


def missing() -> str | None:
    """Why a browser cannot be opened here (for a skip reason), or None."""
    if not chromium().is_file():
        return "Debian's chromium is not installed (scripts/setup.sh installs it as root)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (scripts/setup.sh, as root)"
    return None


@contextmanager
def open_browser(user_data_dir: str | Path, width: int = 1200, height: int = 900) -> Iterator:
    """A Playwright browser context on the system Chromium, closed on exit.

    Args:
        user_data_dir: an empty folder for the browser profile (a fresh one per use).
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(user_data_dir),
            executable_path=str(chromium()),
            headless=True,
            args=list(CHROMIUM_FLAGS),
            viewport={"width": width, "height": height},
        )
        try:
            yield ctx
        finally:
            ctx.close()
