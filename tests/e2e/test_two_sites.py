"""Two sites, real IKEv2 + ESP (kernel-libipsec, UDP-encapsulated), driven through openstacksdk.

One scenario, in order: tunnels come up and carry pings (ESP, not ICMP, on the
WAN), statuses ACTIVE and counters rising; a policy change renegotiates one
connection while the other keeps its SPIs; a restarted agent adopts the running
charons without dropping a tunnel; a delete leaves the other passing
traffic; a killed charon comes back by itself; a peer that goes away is DOWN
within the DPD time.
"""

from __future__ import annotations

import os
import signal
import time

from tests.agent.conftest import wait_until
from isthmus.demo.sites import LAN, LAN2, WAN, Sites, charon_pids

PSK = "e2e-secret-not-logged"


def make_site(sdk, sites: Sites, side: str, public, pub_subnet) -> dict:
    net = sdk.network.create_network(name=f"lan-{side}")
    lan = sdk.network.create_subnet(network_id=net.id, ip_version=4, cidr=f"{LAN[side]}.0/24",
                                    gateway_ip=f"{LAN[side]}.1")
    lan2 = sdk.network.create_subnet(network_id=net.id, ip_version=4,
                                     cidr=f"{LAN2[side]}.0/24", gateway_ip=f"{LAN2[side]}.1")
    router = sdk.network.create_router(name=f"router-{side}", external_gateway_info={
        "network_id": public.id,
        "external_fixed_ips": [{"subnet_id": pub_subnet.id, "ip_address": WAN[side]}]})
    # Where this router lives: an admin-only Isthmus attribute (the SDK does not know it).
    response = sdk.network.put(f"/routers/{router.id}",
                               json={"router": {"isthmus:namespace": sites.ns(f"r{side}")}})
    assert response.status_code == 200, response.text
    sdk.network.add_interface_to_router(router, subnet=lan.id)
    sdk.network.add_interface_to_router(router, subnet=lan2.id)
    local = sdk.network.create_vpn_endpoint_group(name=f"local-{side}", type="subnet",
                                                  endpoints=[lan.id])
    local2 = sdk.network.create_vpn_endpoint_group(name=f"local2-{side}", type="subnet",
                                                   endpoints=[lan2.id])
    service = sdk.network.create_vpn_service(router_id=router.id, name=f"vpn-{side}")
    return {"router": router, "service": service, "local": local, "local2": local2}


def connect(sdk, site: dict, other_side: str, own: str, ike, ipsec, second: bool = False,
            psk: str = PSK):
    lan = LAN2 if second else LAN
    peer = sdk.network.create_vpn_endpoint_group(type="cidr",
                                                 endpoints=[f"{lan[other_side]}.0/24"])
    suffix = "2" if second else "1"
    return sdk.network.create_vpn_ipsec_site_connection(
        name=f"{own}-to-{other_side}-{suffix}", vpnservice_id=site["service"].id,
        ikepolicy_id=ike.id, ipsecpolicy_id=ipsec.id, psk=psk,
        local_ep_group_id=(site["local2"] if second else site["local"]).id,
        peer_ep_group_id=peer.id, peer_address=WAN[other_side],
        peer_id=f"@{other_side}{suffix}.example", local_id=f"@{own}{suffix}.example",
        dpd={"action": "restart", "interval": 2, "timeout": 10})


def status(sdk, conn) -> str:
    return sdk.network.get_vpn_ipsec_site_connection(conn.id).status


def traffic(sdk, conn) -> dict:
    return sdk.network.get("/vpn/ipsec-site-connections/" + conn.id).json()[
        "ipsec_site_connection"]["isthmus:traffic"]


def child_spis(isthmus, router_id: str) -> dict[str, list[str]]:
    driver = isthmus.agent.drivers[0]
    charon = driver._charons[router_id]
    return {name: sorted(info["spis"]) for name, info in charon.sas().items()}


def test_two_sites(isthmus, sdk, sites, caplog):
    net = sdk.network
    public = net.create_network(name="wan", is_router_external=True)
    pub_subnet = net.create_subnet(network_id=public.id, ip_version=4,
                                   cidr="198.51.100.0/24", gateway_ip=None)
    a = make_site(sdk, sites, "a", public, pub_subnet)
    b = make_site(sdk, sites, "b", public, pub_subnet)
    ike = net.create_vpn_ike_policy(name="ike", ike_version="v2", pfs="group14",
                                    encryption_algorithm="aes-256")
    esp = net.create_vpn_ipsec_policy(name="esp", pfs="group14")
    esp_gcm = net.create_vpn_ipsec_policy(name="esp-gcm", encryption_algorithm="aes-128-gcm-16",
                                          pfs="group14")
    a1 = connect(sdk, a, "b", "a", ike, esp)
    b1 = connect(sdk, b, "a", "b", ike, esp)
    a2 = connect(sdk, a, "b", "a", ike, esp, second=True)
    b2 = connect(sdk, b, "a", "b", ike, esp, second=True)

    # 1. Up, ACTIVE, pinging through ESP-in-UDP, counters rising.
    for conn in (a1, b1, a2, b2):
        wait_until(lambda: status(sdk, conn) == "ACTIVE", timeout_s=20)
    capture = sites.capture_wan("a", seconds=8, packets=8)
    time.sleep(0.5)
    assert sites.ping("ha", f"{LAN['b']}.2", count=4)
    wan, _ = capture.communicate()
    assert "UDP-encap: ESP" in wan, wan
    assert "ICMP echo" not in wan, wan
    first = wait_until(lambda: (t := traffic(sdk, a1))["packets_out"] > 0 and t, timeout_s=5)
    assert sites.ping("ha", f"{LAN['b']}.2", count=3)
    wait_until(lambda: traffic(sdk, a1)["bytes_out"] > first["bytes_out"], timeout_s=5)

    # 2. A policy change renegotiates that connection; the other keeps its SAs.
    spis_before = child_spis(isthmus, a["router"].id)
    net.update_vpn_ipsec_site_connection(a1, ipsecpolicy_id=esp_gcm.id)
    net.update_vpn_ipsec_site_connection(b1, ipsecpolicy_id=esp_gcm.id)
    second = f"isthmus-{a2.id}"
    first_name = f"isthmus-{a1.id}"
    spis_after = wait_until(lambda: (now := child_spis(isthmus, a["router"].id)).get(
        first_name) not in (None, [], spis_before[first_name]) and now, timeout_s=20)
    assert spis_after[second] == spis_before[second], "the untouched connection kept its SAs"
    wait_until(lambda: sites.ping("ha", f"{LAN['b']}.2", count=1), timeout_s=20)
    wait_until(lambda: status(sdk, a1) == "ACTIVE", timeout_s=10)
    assert child_spis(isthmus, a["router"].id)[second] == spis_before[second]
    # The old SAs are closed once the new ones are up, make-before-break (rotation.py).
    wait_until(lambda: not any(c.replacing() for c in isthmus.agent.drivers[0]._charons.values()),
               timeout_s=30)

    # 2b. The agent restarts: it adopts the running charons, no tunnel is dropped.
    before_restart = child_spis(isthmus, a["router"].id)
    isthmus.stop_agent()
    isthmus.start_agent()
    wait_until(lambda: a["router"].id in isthmus.agent.drivers[0]._charons, timeout_s=10)
    time.sleep(2)   # a full resync and a status poll have run
    assert child_spis(isthmus, a["router"].id) == before_restart
    assert sites.ping("ha", f"{LAN['b']}.2", count=2)

    # 3. Deleting one connection leaves the other passing traffic.
    net.delete_vpn_ipsec_site_connection(a2, ignore_missing=False)
    net.delete_vpn_ipsec_site_connection(b2, ignore_missing=False)
    wait_until(lambda: second not in child_spis(isthmus, a["router"].id), timeout_s=10)
    assert sites.ping("ha", f"{LAN['b']}.2", count=2)

    # 4. A killed charon comes back, with its connections, without any API call.
    for pid in charon_pids(sites, "ra"):
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: charon_pids(sites, "ra"), timeout_s=15)
    wait_until(lambda: sites.ping("ha", f"{LAN['b']}.2", count=1), timeout_s=30)
    wait_until(lambda: status(sdk, a1) == "ACTIVE", timeout_s=10)

    # 5. The peer goes away: DOWN in the API within the DPD time (interval 2 s, timeout 10 s).
    sites.set_wan("b", up=False)
    # How fast is measured by benchmarks/tunnel.py; here only that it happens.
    wait_until(lambda: status(sdk, a1) == "DOWN", timeout_s=90)
    assert PSK not in caplog.text, "secrets are never logged"
