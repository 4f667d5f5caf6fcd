"""Headless Debian Chromium driven by Playwright for the browser tests (never a downloaded browser)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"

#: Skips a test on a machine without Debian's chromium.
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")


@contextmanager
def chromium_page() -> Iterator[Any]:
    """A fresh page that accepts the tests' self-made certificates; the browser closes afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--ignore-certificate-errors"])
        try:
            yield browser.new_context(ignore_https_errors=True).new_page()
        finally:
            browser.close()
