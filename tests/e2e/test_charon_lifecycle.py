"""Deleting a VPN service leaves no charon behind, however the status poll interleaves.

The status poll restarts a charon that does not answer. It used to do so while
the delete was stopping that very charon (the stop had made it not answer), so
a charon came back on a directory the stop then removed: an orphan nobody
would ever stop. Here a router gets a VPN service with a site connection and
loses it again, round after round, while the test runs the agent's own status
poll back to back (the configured interval is at least a second; the race
wants many polls inside each stop). After each delete nothing of the router's
charon may be left, on either side of the privileged boundary.
"""

from __future__ import annotations

import os
import subprocess
import logging
import threading
from pathlib import Path

from isthmus.demo.sites import charon_pids
from isthmus.drivers.device.strongswan import launcher
from tests.agent.conftest import wait_until
from tests.e2e.test_two_sites import connect, make_site

LOG = logging.getLogger(__name__)
ROUNDS = 8


class PollHammer:
    """Runs the agent's status poll back to back in a thread of its own until stopped."""

    def __init__(self, agent) -> None:
        self.agent = agent
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="poll-hammer", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.agent.poll_statuses()
            except Exception:   # as in the agent's own loop: logged, and the next round runs
                LOG.exception("status poll failed")
            self.polls += 1

    def __enter__(self) -> "PollHammer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=120)
        assert not self._thread.is_alive(), "a status poll hung"


def charons_of(router_id: str) -> list[int]:
    """charon processes whose ``/run`` is (or was, before its removal) the router's directory."""
    found = []
    out = subprocess.run(["pgrep", "-x", "charon"], capture_output=True, text=True).stdout
    for pid in out.split():
        try:
            mounts = Path(f"/proc/{pid}/mountinfo").read_text()
        except OSError:
            continue   # gone meanwhile
        if f"/{router_id}" in mounts:   # the bind mount's source (a deleted one too)
            found.append(int(pid))
    return found


def test_deleting_a_vpn_service_never_leaves_a_charon_running(isthmus, sdk, sites, short_tmp):
    net = sdk.network
    public = net.create_network(name="wan", is_router_external=True)
    pub_subnet = net.create_subnet(network_id=public.id, ip_version=4,
                                   cidr="198.51.100.0/24", gateway_ip=None)
    site = make_site(sdk, sites, "a", public, pub_subnet)
    router_id = site["router"].id
    ike = net.create_vpn_ike_policy(name="ike", ike_version="v2")
    esp = net.create_vpn_ipsec_policy(name="esp")
    agent_dir = short_tmp / "strongswan" / router_id

    try:
        for round_ in range(ROUNDS):
            if round_:   # round 0 uses the service make_site created
                site["service"] = net.create_vpn_service(router_id=router_id, name="vpn-a")
            conn = connect(sdk, site, "b", "a", ike, esp)
            wait_until(lambda: net.get_vpn_service(site["service"].id).status == "ACTIVE",
                       timeout_s=30)
            assert charons_of(router_id), f"round {round_}: the service's charon is running"

            with PollHammer(isthmus.agent) as hammer:
                net.delete_vpn_ipsec_site_connection(conn, ignore_missing=False)
                net.delete_vpn_service(site["service"], ignore_missing=False)
                # The delete has been synced: the agent forgot the router and its queue is idle.
                wait_until(lambda: isthmus.agent.router_state(router_id) is None
                           and isthmus.agent.queue.wait_idle(0), timeout_s=60)
                start = hammer.polls
                wait_until(lambda: hammer.polls >= start + 3, timeout_s=60)
            # Every poll that saw the router before its removal has ended (the hammer's ones
            # joined; the periodic one runs at most one more round, also without restarting).
            assert not charons_of(router_id), f"round {round_}: charon left running"
            assert not charon_pids(sites, "ra"), f"round {round_}: a charon in the namespace"
            assert not os.path.exists(launcher.router_dir(router_id)), \
                f"round {round_}: {launcher.router_dir(router_id)} left behind"
            assert not agent_dir.exists(), f"round {round_}: {agent_dir} left behind"
            # The router's namespace is the operator's: it stays, with nothing of ours in it.
            assert sites.ns("ra") in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                    text=True).stdout
            left = subprocess.run(["ip", "netns", "pids", sites.ns("ra")], capture_output=True,
                                  text=True).stdout.split()
            assert not left, f"round {round_}: processes left in {sites.ns('ra')}: {left}"
    finally:
        launcher.stop(router_id)   # whatever a failed round left on the root side
