"""Debian's chromium for the browser tests, driven by playwright (nothing downloaded).

``skip_unless_chromium`` skips the calling test module when chromium is not installed,
unless ``CITEQA_REQUIRE_BROWSER=1`` (set by ``.ci/run``) makes that a failure; the
``browser`` fixture (``conftest.py``) launches one chromium per test module with ``ARGS``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def skip_unless_chromium() -> None:
    if CHROMIUM is None and os.environ.get("CITEQA_REQUIRE_BROWSER") != "1":
        pytest.skip(
            "chromium is not installed (apt-get install chromium); .ci/run installs it",
            allow_module_level=True,
        )


@contextmanager
def chromium() -> Iterator[Browser]:
    assert CHROMIUM, "chromium is required (CITEQA_REQUIRE_BROWSER=1): apt-get install chromium"
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()
