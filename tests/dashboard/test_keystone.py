"""The dashboard behind Keystone, as ``isthmus server`` builds it (keystonemiddleware in the
pipeline, the identity server unreachable, so no token is ever valid here).

The page's files pass without a token, and only they: every data call the page
makes carries the user's token as ``X-Auth-Token`` (never in a URL), is refused,
and the page says so.
"""

from __future__ import annotations

import http.client
from typing import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from isthmus.dashboard.files import static_files
from tests.agent.conftest import Embedded, make_embedded
from tests.api.test_keystone import keystone_conf
from tests.dashboard.site import open_dashboard

TOKEN = "gAAAAA-bogus-token-never-in-a-url"


@pytest.fixture
def keystone_isthmus(tmp_path) -> Iterator[Embedded]:
    env = make_embedded(tmp_path, config_files=[str(keystone_conf(tmp_path))])
    yield env
    env.stop()


def _raw_get(url: str, path: str) -> int:
    """The status of GET ``path`` sent as written (httpx would resolve ``..`` first)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def test_only_the_dashboards_files_pass_without_a_token(keystone_isthmus):
    url = keystone_isthmus.api.url
    for path in static_files():
        assert _raw_get(url, path) == 200, path
    for path in ("/v2.0/vpn/ipsec-site-connections", "/v2.0/vpn/events?stream=true",
                 "/dashboard/settings.json", "/dashboard/../v2.0/routers",
                 "/dashboard/%2e%2e/v2.0/routers", "/dashboard//v2.0/routers",
                 "/dashboard/index.html/../../v2.0/routers"):
        assert _raw_get(url, path) == 401, path


def test_the_page_says_the_api_refused_and_sends_the_token_only_as_a_header(
        context, keystone_isthmus):
    url = keystone_isthmus.api.url
    sent: list[tuple[str, dict[str, str]]] = []
    context.on("request", lambda request: sent.append((request.url, request.headers)))

    page = context.new_page()
    page.goto(f"{url}/dashboard/")   # no credentials yet: no token at all
    expect(page.locator("#error")).to_contain_text("The API asks for authentication (401)")
    expect(page.locator("#credentials")).to_be_visible()
    expect(page.locator("#routers")).to_contain_text("the API refused these credentials")

    page.close()
    page = open_dashboard(context, url, token=TOKEN)
    expect(page.locator("#identity")).to_have_text("Keystone token")
    expect(page.locator("#error")).to_contain_text(
        "The request you have made requires authentication.")
    expect(page.locator("#stream-state")).to_have_attribute("data-state", "refused")

    data_calls = [(u, h) for u, h in sent if "/v2.0/" in u]
    with_token = [u for u, h in data_calls if h.get("x-auth-token") == TOKEN]
    assert with_token, data_calls
    assert not [u for u, _ in sent if TOKEN in u]
