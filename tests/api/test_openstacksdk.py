"""The full VPN lifecycle driven by openstacksdk, as a user with no Keystone would."""

from __future__ import annotations

import openstack
import pytest
from openstack import exceptions as os_exc


@pytest.fixture
def conn(api):
    connection = openstack.connect(auth_type="none", network_endpoint_override=f"{api.url}/",
                                   load_yaml_config=False, load_envvars=False)
    yield connection
    connection.close()


def test_full_lifecycle(conn):
    net = conn.network
    assert net.find_extension("vpnaas") is not None
    public = net.create_network(name="public", is_router_external=True)
    pub4 = net.create_subnet(network_id=public.id, ip_version=4, cidr="172.24.5.0/24",
                             is_dhcp_enabled=False)
    private = net.create_network(name="private")
    sub_a = net.create_subnet(network_id=private.id, ip_version=4, cidr="10.1.0.0/24")
    sub_b = net.create_subnet(network_id=private.id, ip_version=4, cidr="10.2.0.0/24")
    router = net.create_router(name="r1", external_gateway_info={"network_id": public.id})
    assert router.external_gateway_info["external_fixed_ips"][0]["subnet_id"] == pub4.id
    net.add_interface_to_router(router, subnet=sub_a.id)
    net.add_interface_to_router(router, subnet=sub_b.id)

    ike = net.create_vpn_ike_policy(name="ike", ike_version="v2", pfs="group14",
                                    lifetime={"units": "seconds", "value": 7200})
    ipsec = net.create_vpn_ipsec_policy(name="esp", encryption_algorithm="aes-256")
    assert ike.auth_algorithm == "sha256" and ike.lifetime["value"] == 7200
    service = net.create_vpn_service(router_id=router.id, name="svc")
    assert service.status == "PENDING_CREATE" and service.external_v4_ip
    local = net.create_vpn_endpoint_group(name="local", type="subnet",
                                          endpoints=[sub_a.id, sub_b.id])
    peer = net.create_vpn_endpoint_group(name="peer", type="cidr",
                                         endpoints=["10.20.0.0/24"])
    peer2 = net.create_vpn_endpoint_group(name="peer2", type="cidr",
                                          endpoints=["10.30.0.0/24"])
    common = dict(vpnservice_id=service.id, ikepolicy_id=ike.id, ipsecpolicy_id=ipsec.id,
                  local_ep_group_id=local.id, psk="secret", peer_id="203.0.113.5",
                  peer_address="203.0.113.5")
    c1 = net.create_vpn_ipsec_site_connection(name="c1", peer_ep_group_id=peer.id, **common)
    c2 = net.create_vpn_ipsec_site_connection(name="c2", peer_ep_group_id=peer2.id,
                                              dpd={"action": "restart", "interval": 10,
                                                   "timeout": 40}, **common)
    assert c2.dpd == {"action": "restart", "interval": 10, "timeout": 40}

    # list, filter, find, get
    assert {c.name for c in net.vpn_ipsec_site_connections()} == {"c1", "c2"}
    assert [c.id for c in net.vpn_ipsec_site_connections(name="c1")] == [c1.id]
    assert net.find_vpn_ipsec_site_connection("c2").id == c2.id
    assert [g.name for g in net.vpn_endpoint_groups(type="cidr")] in (["peer", "peer2"],
                                                                        ["peer2", "peer"])
    assert net.get_vpn_ike_policy(ike.id).pfs == "group14"

    # updates: policies not in use, and refused while pending
    spare = net.create_vpn_ike_policy(name="spare")
    assert net.update_vpn_ike_policy(spare, name="renamed").name == "renamed"
    with pytest.raises(os_exc.BadRequestException, match="Invalid state PENDING_CREATE"):
        net.update_vpn_ipsec_site_connection(c1, name="x")

    # in-use deletes refused
    with pytest.raises(os_exc.ConflictException, match="is in use"):
        net.delete_vpn_ike_policy(ike, ignore_missing=False)
    with pytest.raises(os_exc.ConflictException, match="still in use"):
        net.delete_vpn_service(service, ignore_missing=False)
    with pytest.raises(os_exc.BadRequestException, match="in use and cannot be deleted"):
        net.delete_vpn_endpoint_group(peer, ignore_missing=False)
    with pytest.raises(os_exc.ConflictException, match="used by VPN service"):
        net.update_router(router, external_gateway_info={})

    # delete in the right order
    for c in (c1, c2):
        net.delete_vpn_ipsec_site_connection(c, ignore_missing=False)
    net.delete_vpn_service(service, ignore_missing=False)
    for g in (local, peer, peer2):
        net.delete_vpn_endpoint_group(g, ignore_missing=False)
    for p in (ike, spare):
        net.delete_vpn_ike_policy(p, ignore_missing=False)
    net.delete_vpn_ipsec_policy(ipsec, ignore_missing=False)
    with pytest.raises(os_exc.NotFoundException):
        net.get_vpn_ike_policy(ike.id)
    net.delete_vpn_ike_policy(ike, ignore_missing=True)
    for s in (sub_a, sub_b):
        net.remove_interface_from_router(router, subnet=s.id)
    net.update_router(router, external_gateway_info={})
    net.delete_router(router, ignore_missing=False)
    for n in (private, public):
        net.delete_network(n, ignore_missing=False)
    assert list(net.networks()) == [] and list(net.ports()) == []


def test_tags_timestamps_and_extra_routes(conn):
    """What openstacksdk's tag mixin and Terraform's ``tags`` do: set, add, remove and
    filter by tags; timestamps and revision parse; extra routes set and cleared."""
    net = conn.network
    assert net.find_extension("standard-attr-tag") is not None
    assert net.find_extension("extraroute") is not None
    private = net.create_network(name="private")
    subnet = net.create_subnet(network_id=private.id, ip_version=4, cidr="10.1.0.0/24")
    red = net.create_router(name="red")
    blue = net.create_router(name="blue")
    net.add_interface_to_router(red, subnet=subnet.id)
    net.set_tags(red, ["red", "team:a"])
    net.set_tags(blue, ["blue", "team:a"])
    net.add_tag(blue, "extra")
    net.remove_tag(blue, "extra")
    assert net.get_router(red).tags == ["red", "team:a"]
    assert [r.name for r in net.routers(tags="red")] == ["red"]
    assert {r.name for r in net.routers(tags="team:a")} == {"red", "blue"}
    assert [r.name for r in net.routers(any_tags="blue,green")] == ["blue"]
    assert [r.name for r in net.routers(not_any_tags="red")] == ["blue"]
    shown = net.get_router(red)
    assert shown.created_at and shown.updated_at and shown.revision_number >= 2
    routes = [{"destination": "10.50.0.0/24", "nexthop": "10.1.0.50"}]
    assert net.update_router(red, routes=routes).routes == routes
    assert net.update_router(red, routes=[]).routes == []
    net.remove_tag(red, "red")
    assert net.get_router(red).tags == ["team:a"]
    net.remove_interface_from_router(red, subnet=subnet.id)
    for router in (red, blue):
        net.delete_router(router, ignore_missing=False)
    net.delete_network(private, ignore_missing=False)
