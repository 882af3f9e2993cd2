#!/usr/bin/env python3
"""Dashboard latency: how soon a status change made through the API shows on an open page.

Starts ``isthmus up`` (API server and a noop agent in one process, as a user runs
it) on a fresh data directory, makes a router, a VPN service and a connection
through the API, and opens the dashboard in headless Chromium (Debian's
``/usr/bin/chromium``, driven by Playwright) with the periodic refresh out of the
way (``?refresh=300``): only the event stream can bring a change. Then N times it
flips the connection's ``admin_state_up`` with a PUT (ACTIVE -> DOWN -> ACTIVE...,
through the real agent path: server, RPC, agent, status report, event) and
measures from just before the PUT to

* ``PUT``: the PUT's answer (the API round trip of the change itself);
* ``API``: the API showing the new status (a GET every 10 ms: the baseline, what the
  fastest polling client could see);
* ``page``: the new status drawn in the connection's row (a MutationObserver in the
  page stamps it; browser and benchmark read the same clock).

Prints median and p99 of each; the goal is ``page`` at most 2 s.

    python benchmarks/dashboard.py            # N = 50
    python benchmarks/dashboard.py -n 200
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.dashboard.site

from tests.dashboard.site import CONNS, build_site, open_dashboard, status_of  # noqa: E402

EXE = str(Path(sys.executable).with_name("isthmus"))
CHROMIUM = "/usr/bin/chromium"
GOAL_S = 2.0
BOUND_MS = 15_000

# Stamps each status the connection's row shows, with the wall clock (ms since the epoch).
OBSERVER = """conn_id => {
  window.__drawn = [];
  let last = null;
  const look = () => {
    const cell = document.querySelector(`tr.connection[data-connection-id="${conn_id}"] .status`);
    const status = cell && cell.textContent;
    if (status && status !== last) {
      last = status;
      window.__drawn.push({status, at: performance.timeOrigin + performance.now()});
    }
  };
  new MutationObserver(look).observe(document.getElementById("routers"),
                                     {childList: true, subtree: true, characterData: true});
  look();
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_isthmus(data_dir: Path) -> tuple[subprocess.Popen, str]:
    """``isthmus up`` on a free port; its URL once /healthcheck answers."""
    port = free_port()
    log = open(data_dir / "isthmus.log", "w")
    proc = subprocess.Popen([EXE, "up", "--data-dir", str(data_dir), "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthcheck", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"isthmus up exited {proc.returncode}: see {log.name}")
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit(f"isthmus up did not answer within 60 s: see {log.name}")


def seen_by_api(client: httpx.Client, path: str, status: str, out: list[float]) -> None:
    """Poll ``path`` every 10 ms until it shows ``status``; append when (wall clock)."""
    deadline = time.monotonic() + BOUND_MS / 1000
    while time.monotonic() < deadline:
        if status_of(client, path) == status:
            out.append(time.time())
            return
        time.sleep(0.01)


def summary(name: str, samples_s: list[float], goal: float | None = None) -> str:
    ordered = sorted(samples_s)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    median = statistics.median(ordered)
    verdict = "" if goal is None else ("   ok" if p99 <= goal else "   MISS (goal p99 <= 2 s)")
    return (f"{name:<6}{median * 1000:>11.0f}{p99 * 1000:>10.0f}{max(ordered) * 1000:>10.0f}"
            f"{verdict}")


def run(changes: int) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        proc, url = start_isthmus(Path(tmp))
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            site = build_site(url)
            conn_id = site.connections["branch-office"]
            path = f"{CONNS}/{conn_id}"
            context = browser.new_context()
            page = open_dashboard(context, url, query="?refresh=300")
            page.locator(f'tr.connection[data-connection-id="{conn_id}"] .status') \
                .filter(has_text="ACTIVE").wait_for(timeout=BOUND_MS)
            page.evaluate(OBSERVER, conn_id)
            put_s: list[float] = []
            api_s: list[float] = []
            page_s: list[float] = []
            with site.client() as member, site.client() as poller:
                for n in range(changes):
                    up = n % 2 == 1
                    expected = "ACTIVE" if up else "DOWN"
                    api_seen: list[float] = []
                    watcher = threading.Thread(target=seen_by_api,
                                               args=(poller, path, expected, api_seen))
                    watcher.start()
                    started = time.time()
                    response = member.put(path, json={"ipsec_site_connection": {
                        "admin_state_up": up}})
                    put_s.append(time.time() - started)
                    response.raise_for_status()
                    page.wait_for_function(
                        "s => window.__drawn.length && window.__drawn.at(-1).status === s",
                        arg=expected, timeout=BOUND_MS)
                    drawn_ms = page.evaluate("() => window.__drawn.at(-1).at")
                    page_s.append(drawn_ms / 1000 - started)
                    watcher.join()
                    if not api_seen:
                        raise SystemExit(f"change {n}: the API never showed {expected}")
                    api_s.append(api_seen[0] - started)
            print(f"{changes} status changes (admin_state_up flips), isthmus up + noop agent, "
                  "one open page")
            print(f"{'':<6}{'median ms':>11}{'p99 ms':>10}{'max ms':>10}")
            print(summary("PUT", put_s))
            print(summary("API", api_s))
            print(summary("page", page_s, GOAL_S))
        finally:
            browser.close()
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--changes", type=int, default=50,
                        help="status changes to time (default 50)")
    run(parser.parse_args().changes)


if __name__ == "__main__":
    main()
