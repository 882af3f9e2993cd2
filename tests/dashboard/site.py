"""A project with a router, VPN services and site connections, made through the API;
and the dashboard opened on it, signed in as a user would (tests, screenshots, benchmark)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.api.topology import build, ok

SERVICES = "/v2.0/vpn/vpnservices"
CONNS = "/v2.0/vpn/ipsec-site-connections"
PROJECT = "demoproj"


@dataclass
class Site:
    url: str
    router: str
    service: str
    connections: dict[str, str] = field(default_factory=dict)   # name -> id

    def client(self, project: str = PROJECT) -> httpx.Client:
        """A member of ``project``, as tests/conftest.py's clients are."""
        return httpx.Client(base_url=self.url, timeout=30, headers={
            "X-Project-Id": project, "X-User-Id": "user", "X-Roles": "member,reader"})


def status_of(client: httpx.Client, path: str) -> str:
    """The ``status`` of the object at ``path``."""
    return ok(client.get(path), 200).popitem()[1]["status"]


def wait_for_status(client: httpx.Client, path: str, status: str, timeout_s: float = 30) -> None:
    """Poll the API until the object at ``path`` has ``status``."""
    deadline = time.monotonic() + timeout_s
    while status_of(client, path) != status:
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not become {status} within {timeout_s}s")
        time.sleep(0.05)


def build_site(url: str, peers: dict[str, str] | None = None,
               expect_down: frozenset[str] | set[str] = frozenset()) -> Site:
    """A router ``r1`` with one VPN service and a connection per ``peers`` (name -> peer
    address; default one, ``branch-office``), all ACTIVE before this returns (those named
    in ``expect_down``: DOWN)."""
    peers = peers or {"branch-office": "203.0.113.5"}
    headers = {"X-User-Id": "user"}
    with httpx.Client(base_url=url, timeout=30, headers={
            **headers, "X-Project-Id": "adminproj", "X-Roles": "admin,member,reader"}) as admin, \
            httpx.Client(base_url=url, timeout=30, headers={
                **headers, "X-Project-Id": PROJECT, "X-Roles": "member,reader"}) as member:
        topo = build(admin, member)
        ike = ok(member.post("/v2.0/vpn/ikepolicies", json={"ikepolicy": {
            "name": "ike-aes256", "ike_version": "v2"}}))["ikepolicy"]["id"]
        ipsec = ok(member.post("/v2.0/vpn/ipsecpolicies", json={"ipsecpolicy": {
            "name": "esp-aes256"}}))["ipsecpolicy"]["id"]
        service = ok(member.post(SERVICES, json={"vpnservice": {
            "name": "hq-vpn", "router_id": topo.router, "subnet_id": topo.subnet_a}}))
        site = Site(url, topo.router, service["vpnservice"]["id"])
        for name, address in peers.items():
            conn = ok(member.post(CONNS, json={"ipsec_site_connection": {
                "name": name, "vpnservice_id": site.service, "ikepolicy_id": ike,
                "ipsecpolicy_id": ipsec, "peer_address": address, "peer_id": address,
                "psk": "not-shown-on-the-page", "peer_cidrs": ["10.50.0.0/24"]}}))
            site.connections[name] = conn["ipsec_site_connection"]["id"]
        for name, conn_id in site.connections.items():
            wait_for_status(member, f"{CONNS}/{conn_id}",
                            "DOWN" if name in expect_down else "ACTIVE")
    return site


def open_dashboard(context: Any, url: str, project: str | None = PROJECT,
                   token: str | None = None, query: str = "") -> Any:
    """A page on ``url``'s dashboard, signed in through its credentials form with
    ``project`` (noauth headers) or ``token`` (Keystone), as a user does."""
    page = context.new_page()
    page.goto(f"{url}/dashboard/{query}")
    # The first load settles (live, or refused: that opens the form itself) before we click.
    expect(page.locator("#stream-state")).to_have_attribute(
        "data-state", re.compile("live|refused|polling"))
    if not page.locator("#credentials").is_visible():
        page.click("#credentials-toggle")
    if token is not None:
        page.check("input[name=mode][value=token]")
        page.fill("input[name=token]", token)
    else:
        page.fill("input[name=project]", project or "")
    page.click("#credentials button[type=submit]")
    return page


def connection_row(page: Any, conn_id: str) -> Any:
    """The locator of a connection's row."""
    return page.locator(f'tr.connection[data-connection-id="{conn_id}"]')
