"""Debian's chromium for every browser test (never `playwright install`: no downloads here)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("chromium is missing: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


def token_page(browser: Any, token: str, width: int) -> Any:
    """A page at ``width`` px that sends an API token (no login form needed)."""
    context = browser.new_context(viewport={"width": width, "height": 800},
                                  extra_http_headers={"Authorization": f"Bearer {token}"})
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page
