"""A PSK loaded into a real charon reaches no log: ours, charon's, the privileged helper's.

Two sites bring a tunnel up with a canary PSK, change it (the tunnel renegotiates
with the new one), are refused a bad one, and drop their connections; then every
log record of this process (DEBUG, all loggers), its stdout and stderr (the
privileged daemon's audit lines go there), the output of each running charon
(found through /proc, wherever the launcher puts it) and every file under the
state directory but the database are searched for the PSKs.
"""

from __future__ import annotations

import os
from pathlib import Path

import openstack
import pytest

from isthmus.demo.sites import charon_pids
from tests.agent.conftest import wait_until
from tests.e2e.test_two_sites import child_spis, connect, make_site, status
from tests.leaks import canary, every_log_line, files_holding, leaks


def charon_outputs(sites) -> list[Path]:
    """The files each running charon of the two routers writes its stdout and stderr to."""
    found = set()
    for role in ("ra", "rb"):
        for pid in charon_pids(sites, role):
            for fd in (1, 2):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("/") and os.path.isfile(target):
                    found.add(Path(target))
    return sorted(found)


def state_files(state: Path, database_url: str) -> list[Path]:
    """Every regular file under ``state`` except the database (which stores the PSK)."""
    database = database_url.removeprefix("sqlite:///")
    return [p for p in state.rglob("*") if p.is_file() and not p.is_socket()
            and not str(p).startswith(database)]


def test_psk_reaches_charon_but_no_log(isthmus, sdk, sites, short_tmp, capfd):
    first, second, bad = canary(), canary(), canary()
    net = sdk.network
    with every_log_line() as lines:
        public = net.create_network(name="wan", is_router_external=True)
        pub_subnet = net.create_subnet(network_id=public.id, ip_version=4,
                                       cidr="198.51.100.0/24", gateway_ip=None)
        a = make_site(sdk, sites, "a", public, pub_subnet)
        b = make_site(sdk, sites, "b", public, pub_subnet)
        ike = net.create_vpn_ike_policy(name="ike", ike_version="v2", pfs="group14")
        esp = net.create_vpn_ipsec_policy(name="esp", pfs="group14")
        a1 = connect(sdk, a, "b", "a", ike, esp, psk=first)
        b1 = connect(sdk, b, "a", "b", ike, esp, psk=first)
        for conn in (a1, b1):   # IKE authenticated with the PSK: charon has it
            wait_until(lambda: status(sdk, conn) == "ACTIVE", timeout_s=30)
        assert sites.ping("ha", "10.72.0.2", count=2)

        name = f"isthmus-{a1.id}"
        before = child_spis(isthmus, a["router"].id)[name]
        net.update_vpn_ipsec_site_connection(a1, psk=second)
        net.update_vpn_ipsec_site_connection(b1, psk=second)
        wait_until(lambda: child_spis(isthmus, a["router"].id).get(name) not in
                   (None, [], before), timeout_s=30)   # renegotiated with the new PSK
        wait_until(lambda: sites.ping("ha", "10.72.0.2", count=1), timeout_s=30)

        with pytest.raises(openstack.exceptions.BadRequestException) as refused:
            net.update_vpn_ipsec_site_connection(a1, psk=bad + "x" * 300)
        assert bad not in str(refused.value)

        charon_logs = charon_outputs(sites)
        net.delete_vpn_ipsec_site_connection(a1, ignore_missing=False)
        net.delete_vpn_ipsec_site_connection(b1, ignore_missing=False)
        wait_until(lambda: name not in child_spis(isthmus, a["router"].id), timeout_s=15)
    out, err = capfd.readouterr()

    secrets = (first, second, bad)
    assert not leaks(secrets, "\n".join(lines)), "a PSK reached a log line"
    assert not leaks(secrets, out + err), "a PSK reached stdout or stderr"
    assert "verdict=allowed" in err, "the privileged daemon's audit log was not searched"
    assert charon_logs, "no charon output found to search"
    assert not files_holding(secrets, charon_logs), "a PSK reached charon's log"
    files = state_files(short_tmp, isthmus.runtime.services.db.url)
    assert not files_holding(secrets, files), "a PSK reached a file of the state directory"
