"""Service providers: parsing, per-service provider choice, validation and change hooks."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from isthmus.db import models
from isthmus.drivers.service.providers import ProviderConfigError, parse_providers
from tests.agent.conftest import running_embedded, wait_until
from tests.api.test_policies import error
from tests.api.test_vpn_resources import CONNS, SERVICES
from tests.api.topology import build, ok
from tests.drivers.service import fake_drivers

FAKE = "tests.drivers.service.fake_drivers.FakeRefusingDriver"


@pytest.mark.parametrize("lines,message", [
    (["VPN:a"], "is not VPN:<name>:<driver>[:default]"),
    (["LOADBALANCER:a:ipsec:default"], "is not VPN:<name>:<driver>[:default]"),
    (["VPN:a:ipsec:default", "VPN:A:noop"], "configured twice"),
    (["VPN:a:ipsec:default", "VPN:b:ipsec:default"], "several default providers"),
    (["VPN:a:ipsec"], "no default provider"),
    ([], "no VPN provider is configured"),
])
def test_bad_provider_lines(lines, message):
    with pytest.raises(ProviderConfigError, match=re.escape(message)) as err:
        parse_providers(lines, "option [service_providers] service_provider in /x.conf")
    assert "/x.conf" in str(err.value)


def test_good_provider_lines():
    specs = parse_providers(["VPN:IPsec:ipsec:default", "VPN:other:pkg.mod:Driver"], "here")
    assert [(s.name, s.driver, s.default) for s in specs] == [
        ("ipsec", "ipsec", True), ("other", "pkg.mod:Driver", False)]


@pytest.fixture
def env(tmp_path):
    with running_embedded(tmp_path, **{"service_providers.service_provider": [
            "VPN:ipsec:ipsec:default", f"VPN:fussy:{FAKE}"]}) as env:
        fake_drivers.SEEN.clear()
        yield env


def test_providers_are_listed_and_chosen_per_service(env):
    with env.api.client("admin", roles="admin") as admin, env.api.client("demo") as member:
        providers = ok(member.get("/v2.0/service-providers"), 200)["service_providers"]
        assert providers == [{"service_type": "VPN", "name": "ipsec", "default": True},
                             {"service_type": "VPN", "name": "fussy", "default": False}]
        topo = build(admin, member)
        default = ok(member.post(SERVICES, json={"vpnservice": {"router_id": topo.router}}))
        assert default["vpnservice"]["provider"] == "ipsec"
        fussy = ok(member.post(SERVICES, json={"vpnservice": {
            "router_id": topo.router, "subnet_id": topo.subnet_a, "provider": "fussy"}}))
        assert fussy["vpnservice"]["provider"] == "fussy"
        err = error(member.post(SERVICES, json={"vpnservice": {
            "router_id": topo.router, "provider": "nope"}}), 400)
        assert err["message"] == ("Provider 'nope' is not configured; configured providers: "
                                  "fussy, ipsec")
        with env.runtime.services.db.read() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(
                models.Base.metadata.tables["vpnservices"])).scalar_one()
        assert count == 2
        assert ("fussy", "vpnservices", "create", topo.router) in fake_drivers.SEEN
        assert all(name == "fussy" for name, *_ in fake_drivers.SEEN)


def test_driver_validation_refuses_cleanly(env):
    with env.api.client("admin", roles="admin") as admin, env.api.client("demo") as member:
        topo = build(admin, member)
        service = ok(member.post(SERVICES, json={"vpnservice": {
            "router_id": topo.router, "subnet_id": topo.subnet_a, "provider": "fussy"}}))
        ike = ok(member.post("/v2.0/vpn/ikepolicies", json={"ikepolicy": {}}))["ikepolicy"]
        ah_esp = ok(member.post("/v2.0/vpn/ipsecpolicies", json={"ipsecpolicy": {
            "transform_protocol": "ah-esp"}}))["ipsecpolicy"]
        esp = ok(member.post("/v2.0/vpn/ipsecpolicies", json={"ipsecpolicy": {}}))["ipsecpolicy"]
        body = {"vpnservice_id": service["vpnservice"]["id"], "ikepolicy_id": ike["id"],
                "peer_address": "203.0.113.5", "peer_id": "p", "psk": "s",
                "peer_cidrs": ["10.50.0.0/24"]}
        err = error(member.post(CONNS, json={"ipsec_site_connection": {
            **body, "ipsecpolicy_id": ah_esp["id"]}}), 400)
        assert err["message"] == ("Bad ipsec_site_connection request: provider fussy cannot "
                                  "do ah-esp.")
        err = error(member.post(CONNS, json={"ipsec_site_connection": {
            **body, "ipsecpolicy_id": esp["id"], "name": "busy"}}), 409)
        assert err["type"] == "Conflict"
        assert member.get(CONNS).json()["ipsec_site_connections"] == []
        conn = ok(member.post(CONNS, json={"ipsec_site_connection": {
            **body, "ipsecpolicy_id": esp["id"]}}))["ipsec_site_connection"]
        wait_until(lambda: member.get(f"{CONNS}/{conn['id']}").json()[
            "ipsec_site_connection"]["status"] == "ACTIVE")
