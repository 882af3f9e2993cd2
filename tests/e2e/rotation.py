"""A continuous ping across a tunnel while its configuration changes: the tools that
tests/e2e/test_rotation.py and benchmarks/rotation.py share."""

from __future__ import annotations

import dataclasses
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Callable

from isthmus.demo.sites import LAN, WAN, Sites
from tests.agent.conftest import wait_until
from tests.peers.strongswan import PlainStrongSwan
from tests.peers.test_diagnosis import shown, site_a
from tests.peers.test_peers import eventually, swan_conn

INTERVAL_S = 0.02    # 50 pings a second
_REPLY = re.compile(r"icmp_seq=(\d+) ttl=")
_TRANSMITTED = re.compile(r"(\d+) packets transmitted")


@dataclass
class PingResult:
    """What a continuous ping saw: ``sent`` (counted), ``lost`` among them, and the longest
    run of consecutive lost ones (in pings and seconds)."""

    sent: int
    lost: int
    longest_gap: int

    @property
    def longest_gap_s(self) -> float:
        """The longest run of lost pings, as a time."""
        return self.longest_gap * INTERVAL_S


class ContinuousPing:
    """``ping -i 0.02`` from host a to host b, until :meth:`stop`."""

    def __init__(self, sites: Sites, src: str = "ha", dst: str = f"{LAN['b']}.2") -> None:
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", sites.ns(src), "ping", "-n", "-i", str(INTERVAL_S),
             "-W", "1", dst], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def stop(self) -> PingResult:
        """Stop pinging; count what was lost of all that was sent, but the last two (their
        answers may still be on their way when ping stops)."""
        time.sleep(1.5)
        self.process.send_signal(signal.SIGINT)
        out, _ = self.process.communicate(timeout=10)
        transmitted = _TRANSMITTED.search(out)
        if transmitted is None:
            raise AssertionError(f"ping printed no summary:\n{out[-2000:]}")
        answered = {int(m) for m in _REPLY.findall(out)}
        sent = int(transmitted[1]) - 2
        lost, gap, longest = 0, 0, 0
        for seq in range(1, sent + 1):
            if seq in answered:
                gap = 0
                continue
            lost += 1
            gap += 1
            longest = max(longest, gap)
        return PingResult(sent=sent, lost=lost, longest_gap=longest)


def make_site(sdk: Any, sites: Sites, side: str, public: Any, pub_subnet: Any) -> dict:
    """Router ``side`` with its LAN and a VPN service, through the API."""
    net = sdk.network
    lan_net = net.create_network(name=f"lan-{side}")
    lan = net.create_subnet(network_id=lan_net.id, ip_version=4, cidr=f"{LAN[side]}.0/24",
                            gateway_ip=f"{LAN[side]}.1")
    router = net.create_router(name=f"router-{side}", external_gateway_info={
        "network_id": public.id,
        "external_fixed_ips": [{"subnet_id": pub_subnet.id, "ip_address": WAN[side]}]})
    response = net.put(f"/routers/{router.id}",
                       json={"router": {"isthmus:namespace": sites.ns(f"r{side}")}})
    assert response.status_code == 200, response.text
    net.add_interface_to_router(router, subnet=lan.id)
    local = net.create_vpn_endpoint_group(type="subnet", endpoints=[lan.id])
    service = net.create_vpn_service(router_id=router.id, name=f"vpn-{side}")
    return {"router": router, "service": service, "local": local}


def site_connection(sdk: Any, site: dict, own: str, other: str, psk: str) -> dict:
    """A connection from ``own`` to ``other`` with IKE and IPsec policies of its own (as
    two sites managed apart have): ``{"conn", "ike", "ipsec"}``."""
    net = sdk.network
    ike = net.create_vpn_ike_policy(name=f"ike-{own}", ike_version="v2",
                                    encryption_algorithm="aes-128", pfs="group14")
    ipsec = net.create_vpn_ipsec_policy(name=f"ipsec-{own}", encryption_algorithm="aes-128",
                                        pfs="group14")
    peer = net.create_vpn_endpoint_group(type="cidr", endpoints=[f"{LAN[other]}.0/24"])
    conn = net.create_vpn_ipsec_site_connection(
        name=f"{own}-to-{other}", vpnservice_id=site["service"].id, ikepolicy_id=ike.id,
        ipsecpolicy_id=ipsec.id, psk=psk, local_ep_group_id=site["local"].id,
        peer_ep_group_id=peer.id, peer_address=WAN[other], peer_id=f"@{other}.example",
        local_id=f"@{own}.example", dpd={"action": "restart", "interval": 2, "timeout": 10})
    return {"conn": conn, "ike": ike, "ipsec": ipsec}


def charon_of(isthmus: Any, router_id: str) -> Any:
    """The driver's :class:`~isthmus.drivers.device.strongswan.charon.Charon` of a router."""
    return isthmus.agent.drivers[0]._charons[router_id]


def sa_state(isthmus: Any, router_id: str) -> list[tuple[str, str, list[str]]]:
    """``(IKE unique id, IKE state, [installed CHILD unique ids])`` of a router's SAs."""
    found = []
    for entry in charon_of(isthmus, router_id).list_sas():
        for _, ike in entry.items():
            children = [c["uniqueid"].decode() for c in (ike.get("child-sas") or {}).values()
                        if c["state"] == b"INSTALLED"]
            found.append((ike["uniqueid"].decode(), ike["state"].decode(), children))
    return found


def settled(isthmus: Any, router_ids: list[str], before: dict[str, Any],
            key: Callable[[list], Any]) -> bool:
    """Whether each router's SAs are all new (``key`` of them shares nothing with
    ``before``), ESTABLISHED with a CHILD_SA each, and no rotation is under way."""
    for router_id in router_ids:
        state = sa_state(isthmus, router_id)
        if not state or any(s[1] != "ESTABLISHED" or not s[2] for s in state):
            return False
        if charon_of(isthmus, router_id).replacing() or key(state) & before[router_id]:
            return False
    return True


def rotate(isthmus: Any, sites: Sites, router_ids: list[str], updates: list[Callable[[], Any]],
           key: Callable[[list], Any], pause_s: float = 2.0, timeout_s: float = 60) -> PingResult:
    """A continuous ping while ``updates`` run one after the other (``pause_s`` apart: the
    sides disagree meanwhile), until every router is :func:`settled` on new SAs."""
    before = {r: key(sa_state(isthmus, r)) for r in router_ids}
    ping = ContinuousPing(sites)
    try:
        time.sleep(1)
        for update in updates:
            update()
            time.sleep(pause_s)
        try:
            wait_until(lambda: settled(isthmus, router_ids, before, key), timeout_s=timeout_s)
        except AssertionError:
            raise AssertionError("the rotation did not settle: " + "; ".join(
                f"router {r}: SAs {sa_state(isthmus, r)}, before {sorted(before[r])}, "
                f"replacing {charon_of(isthmus, r).replacing()}" for r in router_ids)) from None
    finally:
        result = ping.stop()
    return result


def ike_ids(state: list) -> frozenset:
    """The IKE_SA unique ids of :func:`sa_state` (a PSK or IKE change makes new ones)."""
    return frozenset(s[0] for s in state)


def child_ids(state: list) -> frozenset:
    """The CHILD_SA unique ids of :func:`sa_state` (an ESP change makes new ones)."""
    return frozenset(c for s in state for c in s[2])


def reload_peer(peer: Any, **changes: Any) -> None:
    """Change a :class:`~tests.peers.strongswan.PlainStrongSwan` peer's connection as its
    operator would: edit swanctl.conf, then ``swanctl --load-all``."""
    for field_name, value in changes.items():
        setattr(peer.conns[0], field_name, value)
    peer.write_config()
    peer.load()


PSK = "rotation-secret-one"
NEW_PSK = "rotation-secret-two"


def two_sites(sdk: Any, sites: Sites) -> tuple[dict, dict, list[str]]:
    """Routers a and b through the API, one connection each way, up and pinging."""
    net = sdk.network
    public = net.create_network(name="wan", is_router_external=True)
    pub_subnet = net.create_subnet(network_id=public.id, ip_version=4,
                                   cidr="198.51.100.0/24", gateway_ip=None)
    a = make_site(sdk, sites, "a", public, pub_subnet)
    b = make_site(sdk, sites, "b", public, pub_subnet)
    ab = site_connection(sdk, a, "a", "b", PSK)
    ba = site_connection(sdk, b, "b", "a", PSK)
    for side in (ab, ba):
        wait_until(lambda: net.get_vpn_ipsec_site_connection(side["conn"].id).status
                   == "ACTIVE", timeout_s=30)
    wait_until(lambda: sites.ping("ha", f"{LAN['b']}.2", count=1), timeout_s=20)
    return ab, ba, [a["router"].id, b["router"].id]


def isthmus_peer_rotations(isthmus: Any, sdk: Any, sites: Sites) -> dict[str, PingResult]:
    """Between two Isthmus sites: the PSK, then the ESP proposal (aes-256), then the IKE
    proposal (aes-256) change on a's connection, then 2 s later on b's, each through the
    API; what a continuous ping saw during each. A policy in use cannot change (Neutron's
    rule): each side moves to a new one."""
    net = sdk.network
    ab, ba, routers = two_sites(sdk, sites)
    results = {"psk": rotate(isthmus, sites, routers, [
        lambda: net.update_vpn_ipsec_site_connection(ab["conn"], psk=NEW_PSK),
        lambda: net.update_vpn_ipsec_site_connection(ba["conn"], psk=NEW_PSK)], key=ike_ids)}
    esp_a, esp_b = (net.create_vpn_ipsec_policy(name=f"esp-256-{side}", pfs="group14",
                                                encryption_algorithm="aes-256")
                    for side in "ab")
    results["esp"] = rotate(isthmus, sites, routers, [
        lambda: net.update_vpn_ipsec_site_connection(ab["conn"], ipsecpolicy_id=esp_a.id),
        lambda: net.update_vpn_ipsec_site_connection(ba["conn"], ipsecpolicy_id=esp_b.id)],
        key=child_ids)
    ike_a, ike_b = (net.create_vpn_ike_policy(name=f"ike-256-{side}", ike_version="v2",
                                              encryption_algorithm="aes-256", pfs="group14")
                    for side in "ab")
    results["ike"] = rotate(isthmus, sites, routers, [
        lambda: net.update_vpn_ipsec_site_connection(ab["conn"], ikepolicy_id=ike_a.id),
        lambda: net.update_vpn_ipsec_site_connection(ba["conn"], ikepolicy_id=ike_b.id)],
        key=ike_ids)
    return results


def plain_peer_rotations(isthmus: Any, sdk: Any, sites: Sites,
                         peer: PlainStrongSwan) -> tuple[str, dict[str, PingResult]]:
    """Router a through the API against ``peer`` (started, in router b's namespace): the
    PSK, then the ESP proposal, then the IKE proposal change on Isthmus's connection, then
    2 s later in the peer's swanctl.conf (``swanctl --load-all``). The connection id and
    what a continuous ping saw during each change."""
    net = sdk.network
    conn_id = site_a(sdk, sites, psk=PSK)
    eventually(lambda: shown(sdk, conn_id)["status"] == "ACTIVE", timeout_s=60,
               what="ACTIVE with a strongSwan peer")
    eventually(lambda: sites.ping("ha", f"{LAN['b']}.2", count=1), timeout_s=20,
               what="pings across")
    routers = list(isthmus.agent.drivers[0]._charons)
    results = {"psk": rotate(isthmus, sites, routers, [
        lambda: net.update_vpn_ipsec_site_connection(conn_id, psk=NEW_PSK),
        lambda: reload_peer(peer, psk=NEW_PSK)], key=ike_ids)}
    esp_256 = net.create_vpn_ipsec_policy(name="esp-256", pfs="group14",
                                          encryption_algorithm="aes-256")
    results["esp"] = rotate(isthmus, sites, routers, [
        lambda: net.update_vpn_ipsec_site_connection(conn_id, ipsecpolicy_id=esp_256.id),
        lambda: reload_peer(peer, esp="aes256-sha256-modp2048")], key=child_ids)
    ike_256 = net.create_vpn_ike_policy(name="ike-256", ike_version="v2", pfs="group14",
                                        encryption_algorithm="aes-256")
    results["ike"] = rotate(isthmus, sites, routers, [
        lambda: net.update_vpn_ipsec_site_connection(conn_id, ikepolicy_id=ike_256.id),
        lambda: reload_peer(peer, ike="aes256-sha256-modp2048")], key=ike_ids)
    return conn_id, results


def plain_peer(sites: Sites) -> PlainStrongSwan:
    """The hand-configured strongSwan of router b (``start_action start``, as a site that
    brings its tunnel up itself), with :data:`PSK`; not started."""
    conn = dataclasses.replace(swan_conn("b", "a", start_action="start"), psk=PSK)
    return PlainStrongSwan(sites.ns("rb"), [conn])
