"""The screenshots of docs/dashboard.md, taken of a real Isthmus in headless Chromium.

``scripts/dashboard-screenshots`` writes them to docs/images/; the test suite takes
the same ones into a temporary directory (tests/dashboard/test_screenshots.py), so
the pictures in the docs come from code that is tested. The agent runs
:class:`ShowcaseDriver`, a fake device driver with what a real one reports (SA
states, a failure, a warning, growing traffic), so that every part of the page
has something to show.
"""

from __future__ import annotations

import math
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Mapping

from playwright.sync_api import expect

from isthmus import diagnosis
from isthmus.drivers.device.base import RouterState, Statuses
from isthmus.drivers.device.noop import NoopDeviceDriver
from tests.agent.conftest import make_embedded
from tests.dashboard.site import CONNS, build_site, connection_row, open_dashboard

CHROMIUM = "/usr/bin/chromium"
PEERS = {"berlin": "203.0.113.5", "lyon": "203.0.113.77", "paris": "198.51.100.7"}
SA_TIME = "2026-12-02T06:40:11Z"

IKE = {"state": "ESTABLISHED", "version": 2, "encryption": "AES_CBC-256",
       "integrity": "HMAC_SHA2_256_128", "prf": "PRF_HMAC_SHA2_256", "dh_group": "MODP_2048",
       "local_spi": "7f2b9c0e1a4d3b21", "remote_spi": "c3a1e5f7092b4d6e",
       "established_at": SA_TIME}
CHILD = {"state": "INSTALLED", "encryption": "AES_CBC-256", "integrity": "HMAC_SHA2_256_128",
         "protocol": "ESP", "mode": "TUNNEL", "local_spi": "c9d04f1a", "remote_spi": "ce7b2a10",
         "established_at": SA_TIME, "rekey_at": "2026-12-02T07:28:45Z"}


class ShowcaseDriver(NoopDeviceDriver):
    """A fake device driver: ``paris`` fails authentication, ``lyon`` is up one way,
    the others are up; traffic grows at a rate that varies with time."""

    def __init__(self, agent: Any) -> None:
        super().__init__(agent)
        self.started = time.monotonic()
        self.lock = threading.Lock()

    def sync(self, router: RouterState) -> Statuses:
        statuses = dict(super().sync(router))
        for service in router.services:
            for conn in service["ipsec_site_connections"]:
                if conn["name"] == "paris" and statuses[conn["id"]] == "ACTIVE":
                    statuses[conn["id"]] = "DOWN"
        return statuses

    poll = sync

    def details(self, router: RouterState) -> Mapping[str, diagnosis.StatusDetail]:
        out: dict[str, diagnosis.StatusDetail] = {}
        for service in router.services:
            for conn in service["ipsec_site_connections"]:
                up = service["admin_state_up"] and conn["admin_state_up"]
                if not up:
                    out[conn["id"]] = diagnosis.detail("admin_down")
                elif conn["name"] == "paris":
                    message = ("the peer 198.51.100.7 refused our authentication: the PSK or "
                               "the identities (ours 172.24.5.2, expected 198.51.100.7) differ")
                    out[conn["id"]] = diagnosis.detail(
                        "authentication_failed", message, ike=None, child=None,
                        last_failure={"reason": "authentication_failed", "message": message,
                                      "at": SA_TIME}, warnings=[])
                elif conn["name"] == "lyon":
                    warning = {"reason": "one_way_traffic", "at": SA_TIME,
                               "message": "packets leave through the tunnel but none came "
                                          "back for more than 3 s"}
                    out[conn["id"]] = diagnosis.detail(
                        None, warning["message"], ike=IKE, child=CHILD, last_failure=None,
                        warnings=[warning])
                else:
                    out[conn["id"]] = diagnosis.detail(None, "IKE and CHILD SA established",
                                                       ike=IKE, child=CHILD, last_failure=None,
                                                       warnings=[])
        return out

    def traffic(self, router: RouterState) -> Mapping[str, Mapping[str, int]]:
        elapsed = time.monotonic() - self.started
        counters = {}
        for service in router.services:
            for n, conn in enumerate(service["ipsec_site_connections"]):
                if conn["name"] == "paris":
                    continue
                # Integrals of rates that wave: bytes grow, at a varying speed.
                wave = (1 - math.cos(elapsed / 2 + n)) * 40_000
                bytes_out = int(180_000 * elapsed + wave * (n + 2))
                bytes_in = 0 if conn["name"] == "lyon" else int(120_000 * elapsed + wave * 3)
                counters[conn["id"]] = {"bytes_in": bytes_in, "bytes_out": bytes_out,
                                        "packets_in": bytes_in // 900,
                                        "packets_out": bytes_out // 900}
        return counters


SHOWCASE_DRIVER = f"{__name__}.ShowcaseDriver"


def take_screenshots(browser: Any, out_dir: Path, state_dir: Path) -> list[Path]:
    """The docs' screenshots of a fresh Isthmus on ``state_dir``, written to ``out_dir``:
    the overview with one connection's detail open, a status change as it arrives, and
    the credentials form."""
    state_dir.mkdir(parents=True, exist_ok=True)
    env = make_embedded(state_dir, **{"vpnagent.status_check_interval": 1,
                                      "vpnagent.vpn_device_driver": [SHOWCASE_DRIVER]})
    env.start_agent()
    context = browser.new_context(viewport={"width": 1360, "height": 820},
                                  device_scale_factor=1)
    context.set_default_timeout(30_000)
    try:
        site = build_site(env.api.url, PEERS, expect_down={"paris"})
        page = open_dashboard(context, site.url, query="?refresh=1")
        berlin = connection_row(page, site.connections["berlin"])
        expect(connection_row(page, site.connections["paris"]).locator(".reason .chip")) \
            .to_have_text("authentication_failed")
        # Enough samples for a line worth drawing (one a second).
        page.wait_for_function("""() => {
            const line = document.querySelector('tr.connection polyline.out');
            return line && line.getAttribute('points').split(' ').length >= 8; }""")
        berlin.locator("button.toggle").click()
        expect(page.locator(".detail-row")).to_contain_text("ESTABLISHED")
        expect(page.locator(".peer-config")).not_to_contain_text("asking")
        page.mouse.move(0, 0)
        shots = [out_dir / "dashboard.png"]
        page.screenshot(path=str(shots[-1]))

        berlin.locator("button.toggle").click()
        with site.client() as member:
            member.put(f"{CONNS}/{site.connections['lyon']}",
                       json={"ipsec_site_connection": {"admin_state_up": False}})
        expect(connection_row(page, site.connections["lyon"]).locator(".status")) \
            .to_have_text("DOWN")
        expect(page.locator("li.event.kind-status").first).to_contain_text("ACTIVE → DOWN")
        page.mouse.move(0, 0)   # no row under the pointer
        shots.append(out_dir / "dashboard-status-change.png")
        page.screenshot(path=str(shots[-1]))

        page.click("#credentials-toggle")
        expect(page.locator("#credentials")).to_be_visible()
        shots.append(out_dir / "dashboard-credentials.png")
        page.screenshot(path=str(shots[-1]), clip={"x": 0, "y": 0, "width": 1360, "height": 260})
        return shots
    finally:
        context.close()
        env.stop()


def main(argv: list[str]) -> None:
    """``scripts/dashboard-screenshots [DIR]``: take the screenshots into DIR (docs/images)."""
    from playwright.sync_api import sync_playwright

    out_dir = Path(argv[0] if argv else "docs/images")
    out_dir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as state:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            for path in take_screenshots(browser, out_dir, Path(state)):
                print(path)
        finally:
            browser.close()


if __name__ == "__main__":
    main(sys.argv[1:])
