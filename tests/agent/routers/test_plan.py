"""The plan: from desired and observed state to privileged calls (pure logic, no root)."""

from __future__ import annotations

import dataclasses
import uuid

from isthmus.agent.routers import firewall, names
from isthmus.agent.routers.desired import desired_router
from isthmus.agent.routers.observe import Link, ObservedNamespace
from isthmus.agent.routers.plan import plan_router
from tests.agent.routers.payload import fixed_ip, port, router

PHYSNETS = {"public": "br-ex", "lan": "br-lan"}
BRIDGES = {"br-ex": Link("br-ex", "bridge", "", 1500, True), "br-lan": Link("br-lan", "bridge", "", 1500, True)}
PLAIN = {"eth0": Link("eth0", None, "52:54:00:00:00:01", 1500, True, ifindex=2)}


def sample():
    gateway = port("public", fixed_ip("198.51.100.2", "198.51.100.0/24", "198.51.100.1"),
                   fixed_ip("2001:db8:e::2", "2001:db8:e::/64", "2001:db8:e::1"))
    lan1 = port("lan", fixed_ip("10.10.1.1", "10.10.1.0/24"), fixed_ip("2001:db8:1::1", "2001:db8:1::/64"))
    lan2 = port("lan", fixed_ip("10.10.2.1", "10.10.2.0/24"), mtu=1400)
    return router(gateway, [lan1, lan2], routes=[{"destination": "10.20.0.0/16", "nexthop": "10.10.1.254"}],
                  nat_exempt=[("10.10.1.0/24", "192.0.2.0/24")])


def as_built(desired):
    """The observed state of a namespace in which every step of the plan has run."""
    links = {"lo": Link("lo", None, "00:00:00:00:00:00", 65536, True)}
    host = dict(BRIDGES)
    host.update(PLAIN)
    for d in desired.devices:
        if host[d.bridge].kind != "bridge":
            links[d.name] = Link(d.name, "macvlan", d.mac, d.mtu, desired.admin_state_up,
                                 addresses=set(d.addresses), parent_index=host[d.bridge].ifindex,
                                 macvlan_mode="bridge")
            continue
        links[d.name] = Link(d.name, "veth" if d.vlan is None else "vlan", d.mac, d.mtu, desired.admin_state_up,
                             addresses=set(d.addresses), vlan=d.vlan, parent=d.trunk_name)
        if d.trunk_name:
            links[d.trunk_name] = Link(d.trunk_name, "veth", "aa:bb:cc:dd:ee:ff", d.mtu, True)
        host[d.host_name] = Link(d.host_name, "veth", "aa:aa:aa:aa:aa:aa", d.mtu, True, master=d.bridge)
    nat = [f"-N {firewall.CHAIN}", f"-A POSTROUTING -j {firewall.CHAIN}"] + [
        f"-A {firewall.CHAIN} " + " ".join(rule) for rule in firewall.desired_rules(desired.nat)]
    return ObservedNamespace(exists=True, links=links, routes=set(desired.routes), forwarding=True,
                             nat_lines=nat), host


def argvs(plan):
    return [" ".join(step.argv) for step in plan.steps]


def test_new_router_is_built_in_order():
    payload = sample()
    desired = desired_router(payload, "isthmus-", PHYSNETS)
    plan = plan_router(desired, ObservedNamespace(exists=False), dict(BRIDGES))
    ns = f"isthmus-{payload['id']}"
    gw = names.gateway_device(payload["gateway"]["id"])
    lines = argvs(plan)
    assert plan.port_errors == {}
    assert lines[:3] == [f"ip netns add {ns}", f"ip -n {ns} link set lo up",
                         "sysctl -w net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 "
                         "net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 "
                         "net.ipv4.conf.all.arp_notify=1 net.ipv6.conf.all.ndisc_notify=1"]
    host_gw = names.host_device(ns, payload["gateway"]["id"])
    assert (f"ip link add {host_gw} mtu 1500 master br-ex up type veth peer name {gw} "
            f"address {payload['gateway']['mac_address']} mtu 1500 netns {ns}") in lines
    assert f"ip -n {ns} -6 address add 2001:db8:e::2/64 dev {gw} nodad" in lines
    assert f"ip -n {ns} address add 198.51.100.2/24 dev {gw}" in lines
    assert f"ip -n {ns} route add 0.0.0.0/0 via 198.51.100.1 proto 77" in lines
    assert f"ip -n {ns} -6 route add ::/0 via 2001:db8:e::1 proto 77" in lines
    assert f"ip -n {ns} route add 10.20.0.0/16 via 10.10.1.254 proto 77" in lines
    assert lines[-4:] == [
        "iptables -t nat -N isthmus-snat", "iptables -t nat -A POSTROUTING -j isthmus-snat",
        "iptables -t nat -I isthmus-snat -s 10.10.1.0/24 -d 192.0.2.0/24 -j ACCEPT",
        f"iptables -t nat -A isthmus-snat -o {gw} -j SNAT --to-source 198.51.100.2"]
    # Addresses before the routes that need them; every route after every address.
    last_address = max(i for i, line in enumerate(lines) if " address add " in line)
    first_route = min(i for i, line in enumerate(lines) if " route add " in line)
    assert last_address < first_route
    assert len([line for line in lines if " type veth " in line]) == 3


def test_built_router_plans_nothing():
    desired = desired_router(sample(), "isthmus-", PHYSNETS)
    observed, host = as_built(desired)
    assert plan_router(desired, observed, host).steps == []


def test_removing_one_interface_plans_only_its_deletion():
    payload = sample()
    observed, host = as_built(desired_router(payload, "isthmus-", PHYSNETS))
    gone = payload["interfaces"].pop()
    plan = plan_router(desired_router(payload, "isthmus-", PHYSNETS), observed, host)
    ns = f"isthmus-{payload['id']}"
    assert argvs(plan) == [f"ip -n {ns} link delete {names.interface_device(gone['id'])}"]


def test_adding_one_interface_plans_only_that_interface():
    payload = sample()
    observed, host = as_built(desired_router(payload, "isthmus-", PHYSNETS))
    new = port("lan", fixed_ip("10.10.3.1", "10.10.3.0/24"))
    payload["interfaces"].append(new)
    plan = plan_router(desired_router(payload, "isthmus-", PHYSNETS), observed, host)
    assert plan.steps and {step.port_id for step in plan.steps} == {new["id"]}
    assert len(plan.steps) == 3   # veth, up, address


def test_drift_is_fixed_in_place():
    payload = sample()
    desired = desired_router(payload, "isthmus-", PHYSNETS)
    observed, host = as_built(desired)
    gw = desired.devices[0]
    observed.links[gw.name].mac = "02:00:00:00:00:01"
    observed.links[gw.name].addresses.add("198.51.100.99/24")
    host[gw.host_name].master = None
    ns = desired.namespace
    assert argvs(plan_router(desired, observed, host)) == [
        f"ip -n {ns} address delete 198.51.100.99/24 dev {gw.name}",
        f"ip link set {gw.host_name} mtu 1500 master br-ex up",
        f"ip -n {ns} link set {gw.name} address {gw.mac} mtu 1500 up"]


def test_new_gateway_address_moves_snat_and_new_exempt_goes_first():
    payload = sample()
    observed, host = as_built(desired_router(payload, "isthmus-", PHYSNETS))
    payload["gateway"]["fixed_ips"][0]["ip_address"] = "198.51.100.3"
    payload["nat_exempt"].append(("10.10.2.0/24", "192.0.2.0/24"))
    desired = desired_router(payload, "isthmus-", PHYSNETS)
    lines = [line for line in argvs(plan_router(desired, observed, host)) if line.startswith("iptables")]
    gw = desired.devices[0].name
    assert lines == [
        f"iptables -t nat -D isthmus-snat -o {gw} -j SNAT --to-source 198.51.100.2",
        "iptables -t nat -I isthmus-snat -s 10.10.2.0/24 -d 192.0.2.0/24 -j ACCEPT",
        f"iptables -t nat -A isthmus-snat -o {gw} -j SNAT --to-source 198.51.100.3"]


def test_snat_off_removes_the_rules_and_keeps_the_chain():
    payload = sample()
    observed, host = as_built(desired_router(payload, "isthmus-", PHYSNETS))
    payload["enable_snat"] = False
    lines = argvs(plan_router(desired_router(payload, "isthmus-", PHYSNETS), observed, host))
    assert len(lines) == 2 and all(line.startswith("iptables -t nat -D isthmus-snat ") for line in lines)


def test_admin_down_sets_devices_down_and_plans_no_address_or_route():
    payload = sample()
    observed, host = as_built(desired_router(payload, "isthmus-", PHYSNETS))
    payload["admin_state_up"] = False
    desired = desired_router(payload, "isthmus-", PHYSNETS)
    lines = argvs(plan_router(desired, observed, host))
    assert lines == [f"ip -n {desired.namespace} link set {d.name} address {d.mac} mtu {d.mtu} down"
                     for d in desired.devices]
    observed, host = as_built(desired)   # down, as built
    assert plan_router(desired, observed, host).steps == []


def test_vlan_port_is_a_vlan_device_on_the_veth_trunk():
    lan = port("lan", fixed_ip("10.30.0.1", "10.30.0.0/24"), vlan=30, mtu=1450)
    payload = router(None, [lan])
    desired = desired_router(payload, "isthmus-", PHYSNETS)
    ns = desired.namespace
    lines = argvs(plan_router(desired, ObservedNamespace(exists=False), dict(BRIDGES)))
    trunk, dev = names.trunk_device(lan["id"]), names.interface_device(lan["id"])
    host = names.host_device(ns, lan["id"])
    assert lines[3:] == [
        f"ip link add {host} mtu 1450 master br-lan up type veth peer name {trunk} mtu 1450 netns {ns}",
        f"ip -n {ns} link set {trunk} mtu 1450 up",
        f"ip -n {ns} link add link {trunk} name {dev} address {lan['mac_address']} mtu 1450 type vlan id 30",
        f"ip -n {ns} address add 10.30.0.1/24 dev {dev}",
        f"ip -n {ns} link set {dev} address {lan['mac_address']} mtu 1450 up"]   # addresses first: coming up announces them
    observed, hosts = as_built(desired)
    assert plan_router(desired, observed, hosts).steps == []
    # Another vlan id cannot be changed in place: the device is made again.
    lan["segmentation_id"] = 31
    again = argvs(plan_router(desired_router(payload, "isthmus-", PHYSNETS), observed, hosts))
    assert again[0] == f"ip -n {ns} link delete {dev}"
    assert f"ip -n {ns} link add link {trunk} name {dev} address {lan['mac_address']} mtu 1450 type vlan id 31" in again


def test_unknown_physical_network_is_a_port_error_naming_it_and_the_option():
    lan = port("nowhere", fixed_ip("10.10.1.1", "10.10.1.0/24"))
    payload = router(port("public", fixed_ip("198.51.100.2", "198.51.100.0/24", "198.51.100.1")), [lan])
    desired = desired_router(payload, "isthmus-", PHYSNETS)
    reason = desired.port_errors[lan["id"]]
    assert "'nowhere'" in reason and "[vpnagent] physical_networks" in reason
    plan = plan_router(desired, ObservedNamespace(exists=False), dict(BRIDGES))
    assert all(step.port_id != lan["id"] for step in plan.steps)
    assert any(step.port_id == payload["gateway"]["id"] for step in plan.steps)


def test_mapped_device_that_does_not_exist_is_a_port_error():
    gw = port("public", fixed_ip("198.51.100.2", "198.51.100.0/24", "198.51.100.1"))
    desired = desired_router(router(gw), "isthmus-", PHYSNETS)
    plan = plan_router(desired, ObservedNamespace(exists=False), {})
    assert "br-ex (physical network of port" in plan.port_errors[gw["id"]]
    assert "does not exist" in plan.port_errors[gw["id"]]
    assert not any(" route " in " ".join(s.argv) or s.port_id for s in plan.steps)


# -- Plain interfaces: a macvlan per port -------------------------------------------

PLAIN_NETS = {"public": "eth0", "lan": "br-lan"}


def plain_sample():
    gateway = port("public", fixed_ip("198.51.100.2", "198.51.100.0/24", "198.51.100.1"))
    lan = port("lan", fixed_ip("10.10.1.1", "10.10.1.0/24"))
    return router(gateway, [lan])


def test_port_on_a_plain_interface_is_a_macvlan_made_into_the_namespace():
    payload = plain_sample()
    desired = desired_router(payload, "isthmus-", PLAIN_NETS)
    lines = argvs(plan_router(desired, ObservedNamespace(exists=False), {**BRIDGES, **PLAIN}))
    ns, gw = desired.namespace, names.gateway_device(payload["gateway"]["id"])
    mac = payload["gateway"]["mac_address"]
    gateway_lines = [l for l in lines if gw in l]
    assert gateway_lines[:4] == [
        f"ip link add link eth0 name {gw} address {mac} mtu 1500 netns {ns} type macvlan mode bridge",
        f"ip -n {ns} address add 198.51.100.2/24 dev {gw}",
        f"ip -n {ns} link set {gw} address {mac} mtu 1500 up",
        f"iptables -t nat -A isthmus-snat -o {gw} -j SNAT --to-source 198.51.100.2"]
    assert f"ip -n {ns} route add 0.0.0.0/0 via 198.51.100.1 proto 77" in lines
    # No host end for the macvlan; the LAN port on its bridge still gets its veth.
    assert not any(names.host_device(ns, payload["gateway"]["id"]) in l for l in lines)
    assert any(names.host_device(ns, payload["interfaces"][0]["id"]) in l for l in lines)


def test_built_macvlan_router_plans_nothing_and_drift_is_fixed_in_place():
    desired = desired_router(plain_sample(), "isthmus-", PLAIN_NETS)
    observed, host = as_built(desired)
    assert plan_router(desired, observed, host).steps == []
    gw = desired.devices[0]
    observed.links[gw.name].mtu = 1400
    observed.links[gw.name].up = False
    assert argvs(plan_router(desired, observed, host)) == [
        f"ip -n {desired.namespace} link set {gw.name} address {gw.mac} mtu 1500 up"]


def test_macvlan_on_another_parent_or_mode_or_a_veth_is_made_again():
    desired = desired_router(plain_sample(), "isthmus-", PLAIN_NETS)
    ns, gw = desired.namespace, desired.devices[0]
    add = f"ip link add link eth0 name {gw.name} address {gw.mac} mtu 1500 netns {ns} type macvlan mode bridge"
    for change in ({"parent_index": 99}, {"macvlan_mode": "private"}, {"kind": "veth", "macvlan_mode": None}):
        observed, host = as_built(desired)
        for attr, value in change.items():
            setattr(observed.links[gw.name], attr, value)
        lines = argvs(plan_router(desired, observed, host))
        assert lines[0] == f"ip -n {ns} link delete {gw.name}", change
        assert add in lines and f"ip -n {ns} address add 198.51.100.2/24 dev {gw.name}" in lines


def test_remapping_from_a_bridge_to_a_plain_interface_replaces_the_veth():
    payload = plain_sample()
    observed, host = as_built(desired_router(payload, "isthmus-", PHYSNETS))   # on br-ex
    desired = desired_router(payload, "isthmus-", PLAIN_NETS)
    gw = desired.devices[0]
    lines = argvs(plan_router(desired, observed, host))
    assert lines[0] == f"ip -n {desired.namespace} link delete {gw.name}"
    assert lines[1].startswith(f"ip link add link eth0 name {gw.name} ")


def test_removing_a_macvlan_port_plans_only_its_deletion():
    payload = plain_sample()
    observed, host = as_built(desired_router(payload, "isthmus-", PLAIN_NETS))
    gone = payload["gateway"]
    payload["gateway"] = None
    desired = desired_router(payload, "isthmus-", PLAIN_NETS)
    lines = argvs(plan_router(desired, observed, host))
    gw = names.gateway_device(gone["id"])
    assert f"ip -n {desired.namespace} link delete {gw}" in lines
    assert all(l.startswith(("iptables -t nat -D", f"ip -n {desired.namespace} route delete",
                             f"ip -n {desired.namespace} link delete")) for l in lines)


def test_vlan_on_a_plain_interface_is_a_clear_port_error():
    lan = port("public", fixed_ip("10.30.0.1", "10.30.0.0/24"), vlan=30)
    desired = desired_router(router(None, [lan]), "isthmus-", PLAIN_NETS)
    plan = plan_router(desired, ObservedNamespace(exists=False), {**BRIDGES, **PLAIN})
    reason = plan.port_errors[lan["id"]]
    assert "eth0" in reason and "not a Linux bridge" in reason and "vlan" in reason
    assert not any(step.port_id == lan["id"] for step in plan.steps)


def test_plain_interface_that_is_a_bridge_port_is_a_port_error_naming_the_bridge():
    gw = port("public", fixed_ip("198.51.100.2", "198.51.100.0/24", "198.51.100.1"))
    desired = desired_router(router(gw), "isthmus-", PLAIN_NETS)
    host = {"eth0": Link("eth0", None, "", 1500, True, master="br-up", ifindex=2)}
    reason = plan_router(desired, ObservedNamespace(exists=False), host).port_errors[gw["id"]]
    assert "port of br-up" in reason and "map the physical network to br-up" in reason


def test_observed_macvlan_parses_parent_index_and_mode():
    from isthmus.agent.routers.observe import parse_links
    text = ('[{"ifindex":2,"link_index":172,"ifname":"qg-test","flags":["UP"],"mtu":1500,'
            '"address":"02:11:22:33:44:55","link_netnsid":0,'
            '"linkinfo":{"info_kind":"macvlan","info_data":{"mode":"bridge"}}}]')
    link = parse_links(text)["qg-test"]
    assert (link.kind, link.parent_index, link.macvlan_mode, link.ifindex) == ("macvlan", 172, "bridge", 2)


def test_port_in_error_keeps_its_existing_devices():
    payload = sample()
    observed, host = as_built(desired_router(payload, "isthmus-", PHYSNETS))
    payload["interfaces"][0]["physical_network"] = "renamed"
    plan = plan_router(desired_router(payload, "isthmus-", PHYSNETS), observed, host)
    assert not any("link delete" in line for line in argvs(plan))


def test_v6_exempt_pairs_and_v6_only_gateways_are_not_natted():
    gw = port("public", fixed_ip("2001:db8:e::2", "2001:db8:e::/64", "2001:db8:e::1"))
    desired = desired_router(router(gw, nat_exempt=[("2001:db8:1::/64", "2001:db8:2::/64")]), "isthmus-", PHYSNETS)
    assert desired.nat is None
    gw4 = port("public", fixed_ip("198.51.100.2", "198.51.100.0/24", "198.51.100.1"))
    desired = desired_router(router(gw4, nat_exempt=[("2001:db8:1::/64", "2001:db8:2::/64"),
                                                     ["10.0.0.5/24", "10.1.0.0/16"]]), "isthmus-", PHYSNETS)
    assert desired.nat is not None and desired.nat.exempt == (("10.0.0.0/24", "10.1.0.0/16"),)


def test_observed_nat_lines_parse():
    lines = ["-P POSTROUTING ACCEPT", "-N isthmus-snat", "-A POSTROUTING -j isthmus-snat",
             "-A isthmus-snat -s 10.0.0.0/24 -d 10.1.0.0/16 -j ACCEPT"]
    observed = firewall.ObservedNat(lines)
    assert observed.chain_exists and observed.jump_exists
    assert observed.rules == [firewall.exempt_rule("10.0.0.0/24", "10.1.0.0/16")]


def test_other_modes_plan_nothing_and_keep_their_ports():
    payload = sample()
    payload["mode"] = "external"
    payload["namespace"] = "qrouter-" + payload["id"]
    desired = desired_router(payload, "isthmus-", PHYSNETS)
    assert desired.devices == () and len(desired.port_ids) == 3
    assert dataclasses.replace(desired, mode="host").namespace == "qrouter-" + payload["id"]
    assert uuid.UUID(desired.router_id)


def test_every_write_the_plans_make_is_allowed_by_the_shipped_filters():
    """agent.filters pins ip link add|set|delete and route add|delete word by word."""
    from pathlib import Path

    from isthmus.privileged.filterfile import load_filters
    from isthmus.privileged.filters import match_command

    filters = load_filters([str(Path(__file__).resolve().parents[3] / "etc/isthmus/rootwrap.d")])
    assert filters.problems == []
    vlan = port("lan", fixed_ip("10.30.0.1", "10.30.0.0/24"), vlan=30)
    plain = plain_sample()
    plain["interfaces"].append(vlan)
    plans = []
    for payload, nets in ((sample(), PHYSNETS), (plain, PLAIN_NETS)):
        desired = desired_router(payload, "isthmus-", nets)
        plans.append(plan_router(desired, ObservedNamespace(exists=False), {**BRIDGES, **PLAIN}))
        observed, host = as_built(desired)
        for link in observed.links.values():   # drift everywhere: every fix form
            link.mtu, link.up, link.mac = 1280, False, "02:00:00:00:00:09"
        for link in host.values():
            link.master = None
        observed.routes = {type(r)("10.99.0.0/16" if r.version == 4 else "2001:db8:99::/64", r.nexthop)
                           for r in desired.routes}
        plans.append(plan_router(desired, observed, host))
        payload["admin_state_up"] = False
        plans.append(plan_router(desired_router(payload, "isthmus-", nets), observed, host))
        payload["interfaces"] = []
        plans.append(plan_router(desired_router(payload, "isthmus-", nets), observed, host))
    seen = set()
    for plan in plans:
        for step in plan.steps:
            if step.netns_add:
                continue
            argv = ["ip", "netns", "exec", "isthmus-x", *step.argv] if step.in_namespace else list(step.argv)
            match_command(filters.filters, argv, ["/usr/sbin", "/usr/bin", "/sbin", "/bin"])
            seen.add(" ".join(step.argv[:6]))
    assert any("macvlan" in " ".join(s.argv) for p in plans for s in p.steps)
    assert len(seen) > 10
