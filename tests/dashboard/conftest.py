"""Fixtures for the dashboard tests: a real Isthmus over HTTP and headless Chromium.

Chromium is Debian's (``/usr/bin/chromium``, scripts/debian-packages.txt), driven by
Playwright's Python package (the ``test`` extra); Playwright downloads no browser.
Without Chromium the tests skip, except in CI (``ISTHMUS_TEST_REQUIRE_BROWSER=1``,
.ci/run), where they fail.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

import httpx
import pytest

from tests.agent.conftest import Embedded, running_embedded
from tests.dashboard.site import Site, build_site

CHROMIUM = "/usr/bin/chromium"


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None (Playwright itself is in the test
    extra, like httpx: without it the tests do not import)."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing: apt-get install chromium (scripts/debian-packages.txt)"
    return None


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A headless Chromium, shared by one module's tests (each gets its own context)."""
    reason = browser_missing()
    if reason:
        if os.environ.get("ISTHMUS_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


@pytest.fixture
def context(chromium) -> Iterator[Any]:
    """A fresh browser profile (its own sessionStorage) that accepts downloads."""
    ctx = chromium.new_context(accept_downloads=True, viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.fixture
def isthmus(tmp_path) -> Iterator[Embedded]:
    """Isthmus as ``isthmus up`` runs it (API over HTTP, an agent on the noop driver)."""
    with running_embedded(tmp_path, **{"vpnagent.status_check_interval": 1}) as env:
        yield env


@pytest.fixture
def site(isthmus) -> Site:
    """Project ``demoproj``'s router, VPN service and one ACTIVE site connection."""
    return build_site(isthmus.api.url)


@pytest.fixture
def member(isthmus) -> Iterator[httpx.Client]:
    """A member of ``demoproj``, the project the page is opened as."""
    with isthmus.api.client("demoproj") as client:
        yield client
