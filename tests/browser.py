"""Chromium from the Debian packages, driven by Playwright (never ``playwright
install``: no browser is downloaded). Shared by the browser tests and
``docs/make_screenshots.py``."""

from __future__ import annotations

import shutil
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
"""The Debian package's launcher (``apt-get install chromium``)."""

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
"""No sandbox (root in a container), and nothing that calls home: with these a page
makes only the requests it asks for."""


def launch(playwright: Any) -> Any:
    """A headless Chromium ``Browser`` from ``sync_playwright()``."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
