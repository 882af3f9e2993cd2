"""``GET /v2.0/vpn/ipsec-site-connections/{id}/peer-config`` over real HTTP (issue 15).

Who may download, when the PSK is in the download, the text and JSON answers,
and every error in Neutron's format.
"""

from __future__ import annotations

import sqlalchemy as sa

from isthmus.db import models
from isthmus.peers import PSK_PLACEHOLDER
from tests.api.test_policies import error
from tests.api.test_policy_overrides import served  # noqa: F401  (fixture)
from tests.api.test_vpn_resources import CONNS, legacy, make_policies  # noqa: F401
from tests.api.topology import build, ok

FORMATS = {"strongswan", "libreswan", "vyos", "cisco-ios", "juniper-srx", "fortigate", "generic"}


def peer_config(client, conn_id: str, fmt: str | None = None, accept: str = "text/plain"):
    params = {"format": fmt} if fmt is not None else {}
    return client.get(f"{CONNS}/{conn_id}/peer-config", params=params,
                      headers={"Accept": accept})


def make_connection(member, legacy, **change) -> dict:  # noqa: F811
    _, body = legacy
    return ok(member.post(CONNS, json={"ipsec_site_connection": {
        **body, "name": "to the/branch", "psk": "s3cret-psk", **change}}))[
        "ipsec_site_connection"]


def test_formats_listed_without_format(member, legacy):
    conn = make_connection(member, legacy)
    listed = ok(peer_config(member, conn["id"], accept="*/*"), 200)["peer_config_formats"]
    assert {f["name"] for f in listed} == FORMATS
    assert all(f["description"] and f["filename"] for f in listed)


def test_text_download_as_the_owner(member, legacy, topo):
    conn = make_connection(member, legacy)
    response = peer_config(member, conn["id"], "strongswan")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-disposition"] == \
        'attachment; filename="swanctl-to_the_branch.conf"'
    assert response.headers["cache-control"] == "no-store"
    text = response.text
    # the peer's view: its own address local, the router's gateway remote
    assert "local_addrs = 203.0.113.5" in text and f"remote_addrs = {topo.gateway_v4}" in text
    assert "local_ts = 10.50.0.0/24" in text and "remote_ts = 10.1.0.0/24" in text
    assert 'secret = "s3cret-psk"' in text


def test_text_unless_json_is_preferred(member, legacy):
    conn = make_connection(member, legacy)
    for accept in ("*/*", "text/plain, application/json;q=0.5", ""):
        response = peer_config(member, conn["id"], "generic", accept=accept)
        assert response.headers["content-type"] == "text/plain; charset=utf-8", accept
    response = peer_config(member, conn["id"], "generic", accept="application/json")
    assert response.headers["content-type"] == "application/json"


def test_json_answer_with_accept_json(member, legacy):
    conn = make_connection(member, legacy)
    body = ok(peer_config(member, conn["id"], "libreswan", accept="application/json"), 200)
    answer = body["peer_config"]
    assert answer["format"] == "libreswan" and answer["content_type"].startswith("text/plain")
    assert answer["filename"] == "libreswan-to_the_branch.conf"
    assert "authby=secret" in answer["config"] and '"s3cret-psk"' in answer["config"]


def test_reader_of_the_project_downloads_with_the_default_psk_rule(member, reader, legacy):
    conn = make_connection(member, legacy)
    text = peer_config(reader, conn["id"], "generic").text
    assert "s3cret-psk" in text   # default rule: project readers read the PSK


def test_psk_placeholder_when_the_rule_hides_it(served):
    server = served('"get_ipsec_site_connection:psk": "rule:admin_only"\n')
    with server.client("adminproj", roles="admin,member,reader", user="admin") as admin, \
            server.client("demoproj") as member:
        topo = build(admin, member)
        _, ipsec = make_policies(member)
        ike = ok(member.post("/v2.0/vpn/ikepolicies", json={"ikepolicy": {
            "name": "ike2", "ike_version": "v2"}}))["ikepolicy"]["id"]   # every format has v2
        service = ok(member.post("/v2.0/vpn/vpnservices", json={"vpnservice": {
            "router_id": topo.router, "subnet_id": topo.subnet_a}}))["vpnservice"]
        conn = ok(member.post(CONNS, json={"ipsec_site_connection": {
            "vpnservice_id": service["id"], "ikepolicy_id": ike, "ipsecpolicy_id": ipsec,
            "peer_address": "203.0.113.5", "peer_id": "203.0.113.5", "psk": "s3cret-psk",
            "peer_cidrs": ["10.50.0.0/24"]}}))["ipsec_site_connection"]
        for fmt in FORMATS:
            hidden = peer_config(member, conn["id"], fmt).text
            assert "s3cret-psk" not in hidden and PSK_PLACEHOLDER in hidden, fmt
            shown = peer_config(admin, conn["id"], fmt).text
            assert "s3cret-psk" in shown and PSK_PLACEHOLDER not in shown, fmt


def test_other_project_and_unknown_id_get_neutrons_404(member, other, legacy):
    conn = make_connection(member, legacy)
    for client, conn_id in ((other, conn["id"]), (member, "no-such-id")):
        for fmt in ("strongswan", None):
            response = peer_config(client, conn_id, fmt)
            as_get = client.get(f"{CONNS}/{conn_id}")
            assert error(response, 404) == error(as_get, 404)


def test_unknown_format_is_a_400_naming_the_valid_ones(member, legacy):
    conn = make_connection(member, legacy)
    err = error(peer_config(member, conn["id"], "cisco-asa-9"), 400)
    assert err["type"] == "BadRequest"
    assert "'cisco-asa-9'" in err["message"]
    assert all(name in err["message"] for name in FORMATS)


def test_unsupported_combination_is_a_400_naming_field_and_value(member, legacy):
    _, body = legacy
    ike = ok(member.post("/v2.0/vpn/ikepolicies", json={"ikepolicy": {
        "name": "ccm", "encryption_algorithm": "aes-256-ccm-16", "pfs": "group14",
        "ike_version": "v2"}}))
    conn = make_connection(member, legacy, ikepolicy_id=ike["ikepolicy"]["id"])
    err = error(peer_config(member, conn["id"], "libreswan"), 400)
    assert err["type"] == "BadRequest"
    assert "ikepolicy.encryption_algorithm" in err["message"]
    assert "aes-256-ccm-16" in err["message"]
    assert peer_config(member, conn["id"], "strongswan").status_code == 200  # strongSwan can


def test_router_without_external_address_is_a_409(api, member, legacy):
    conn = make_connection(member, legacy)
    services = models.Base.metadata.tables["vpnservices"]
    with api.db.write() as db:   # what a gateway not yet set looks like to the service
        db.execute(sa.update(services).values(external_v4_ip=None))
    err = error(peer_config(member, conn["id"], "generic"), 409)
    assert "no external IPv4 address" in err["message"]


def test_extension_and_openapi_list_it(member):
    aliases = {e["alias"] for e in ok(member.get("/v2.0/extensions"), 200)["extensions"]}
    assert "isthmus-peer-config" in aliases
    paths = ok(member.get("/openapi.json"), 200)["paths"]
    assert "get" in paths["/v2.0/vpn/ipsec-site-connections/{id}/peer-config"]
