"""Headless Chromium for the dashboard's tests and benchmark: Debian's ``chromium`` driven by
Playwright (``playwright install`` needs the internet; the system browser does not)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync")


def chromium_path() -> str | None:
    """The system Chromium (``FENGQIAO_CHROMIUM`` overrides), or None if none is installed."""
    return os.environ.get("FENGQIAO_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def headless_chromium() -> Iterator[Browser]:
    """A headless Chromium for the duration of the block."""
    path = chromium_path()
    if path is None:
        raise RuntimeError("no chromium on PATH: apt-get install -y chromium chromium-driver")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            browser.close()


def artifact_dir() -> Path:
    """Where tests leave screenshots for CI to keep: ``FENGQIAO_TEST_ARTIFACTS`` or
    ``var/test-artifacts`` of the checkout."""
    folder = Path(os.environ.get("FENGQIAO_TEST_ARTIFACTS") or Path(__file__).resolve().parents[1] / "var"
                  / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
