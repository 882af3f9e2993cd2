"""IKE and IPsec policy validation, defaults and in-use protection."""

from __future__ import annotations

import pytest

from tests.api.topology import ok

IKE = "/v2.0/vpn/ikepolicies"
IPSEC = "/v2.0/vpn/ipsecpolicies"


def error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    return response.json()["NeutronError"]


@pytest.mark.parametrize("path,key", [(IKE, "ikepolicy"), (IPSEC, "ipsecpolicy")])
def test_defaults_follow_neutron_29_without_sha1(member, path, key):
    policy = ok(member.post(path, json={key: {}}))[key]
    assert policy["auth_algorithm"] == "sha256"
    assert policy["encryption_algorithm"] == "aes-128"
    assert policy["pfs"] == "group5"
    assert policy["lifetime"] == {"units": "seconds", "value": 3600}
    assert policy["tenant_id"] == policy["project_id"] == "demoproj"
    assert ok(member.get(f"{path}/{policy['id']}"), 200)[key] == policy


@pytest.mark.parametrize("path,key", [(IKE, "ikepolicy"), (IPSEC, "ipsecpolicy")])
@pytest.mark.parametrize("attr,value,reason", [
    ("auth_algorithm", "sha1", "sha1 is not in valid_values"),
    ("auth_algorithm", "md5", "md5 is not in valid_values"),
    ("encryption_algorithm", "3des", "3des is not in valid_values"),
    ("encryption_algorithm", "des", "des is not in valid_values"),
    ("pfs", "group1", "group1 is not in valid_values"),
    ("pfs", 14, "14 is not in valid_values"),
    ("lifetime", {"units": "minutes", "value": 60}, "minutes is not in valid_values"),
    ("lifetime", {"value": 59}, "'59' is too small - must be at least '60'"),
    ("lifetime", {"value": "abc"}, "'abc' is not an integer"),
    ("lifetime", {"value": 2**40}, "is out of range"),
    ("lifetime", {"value": 3600, "bogus": 1}, "Unexpected keys supplied: bogus"),
    ("lifetime", "3600", "'3600' is not a dictionary"),
    ("name", "x" * 256, "exceeds maximum length of 255"),
    ("description", 5, "'5' is not a valid string"),
])
def test_invalid_values_are_400_with_the_reason(member, path, key, attr, value, reason):
    err = error(member.post(path, json={key: {attr: value}}), 400)
    assert err["type"] == "HTTPBadRequest"
    assert err["message"].startswith(f"Invalid input for {attr}. Reason: ")
    assert reason in err["message"]
    assert ok(member.get(path), 200)[path.rsplit("/", 1)[1]] == []


@pytest.mark.parametrize("attr,value", [("ike_version", "v3"), ("phase1_negotiation_mode", "x")])
def test_ike_only_enums(member, attr, value):
    assert error(member.post(IKE, json={"ikepolicy": {attr: value}}), 400)["message"] == \
        f"Invalid input for {attr}. Reason: {value} is not in valid_values."


@pytest.mark.parametrize("attr,value", [("transform_protocol", "gre"),
                                        ("encapsulation_mode", "bogus")])
def test_ipsec_only_enums(member, attr, value):
    assert error(member.post(IPSEC, json={"ipsecpolicy": {attr: value}}), 400)["message"] == \
        f"Invalid input for {attr}. Reason: {value} is not in valid_values."


def test_accepted_modern_algorithms(member):
    for enc in ("aes-256-gcm-16", "aes-128-ctr", "aes-192-ccm-8"):
        assert ok(member.post(IKE, json={"ikepolicy": {"encryption_algorithm": enc}}))[
            "ikepolicy"]["encryption_algorithm"] == enc
    for pfs in ("group14", "group31"):
        ok(member.post(IPSEC, json={"ipsecpolicy": {"pfs": pfs}}))


@pytest.mark.parametrize("path,key", [(IKE, "ikepolicy"), (IPSEC, "ipsecpolicy")])
def test_lifetime_value_is_echoed_as_sent_and_read_back_as_integer(member, path, key):
    """Neutron 29 + neutron-vpnaas 29, observed on a local server (2026-12-01), for both
    IKE and IPsec policies: the create (201) and update (200) answers echo
    ``lifetime.value`` exactly as sent ("2000" stays a string, " 3100 " keeps its
    spaces, 3200.0 stays a float); it is validated as an integer and stored as one,
    so a later show and list give 2000. An update without a lifetime value (a name,
    or only ``units``) shows the stored integer. neutron-tempest-plugin's
    test_create_update_delete_ipsec_policy asserts the string echo."""
    created = ok(member.post(path, json={key: {"lifetime": {"value": "2000"}}}))[key]
    assert created["lifetime"] == {"units": "seconds", "value": "2000"}
    pid = created["id"]
    for sent in ("2500", " 3100 ", 3200.0, 3300):
        updated = ok(member.put(f"{path}/{pid}", json={
            key: {"lifetime": {"units": "seconds", "value": sent}}}), 200)[key]
        assert updated["lifetime"] == {"units": "seconds", "value": sent}
    assert ok(member.get(f"{path}/{pid}"), 200)[key]["lifetime"]["value"] == 3300
    listed = ok(member.get(path, params={"id": pid}), 200)[key.replace("y", "ies")]
    assert listed[0]["lifetime"]["value"] == 3300
    renamed = ok(member.put(f"{path}/{pid}", json={key: {"name": "x"}}), 200)[key]
    assert renamed["lifetime"] == {"units": "seconds", "value": 3300}
    units_only = ok(member.put(f"{path}/{pid}", json={key: {"lifetime": {"units": "seconds"}}}),
                    200)[key]
    assert units_only["lifetime"] == {"units": "seconds", "value": 3300}


def test_partial_lifetime_update_keeps_units(member):
    pid = ok(member.post(IKE, json={"ikepolicy": {"lifetime": {"value": 7200}}}))["ikepolicy"]["id"]
    ok(member.put(f"{IKE}/{pid}", json={"ikepolicy": {"lifetime": {"value": "4000"}}}), 200)
    shown = ok(member.get(f"{IKE}/{pid}"), 200)["ikepolicy"]
    assert shown["lifetime"] == {"units": "seconds", "value": 4000}


@pytest.mark.parametrize("body,message", [
    ({"ikepolicy": {"id": "x"}}, "Cannot update read-only attribute id"),
    ({"ikepolicy": {"tenant_id": "x"}}, "Cannot update read-only attribute tenant_id"),
    ({"ikepolicy": {"foo": 1}}, "Unrecognized attribute(s) 'foo'"),
    ({"ike_policy": {}}, "Unable to find 'ikepolicy' in request body"),
    ([1, 2], "Body contains invalid data"),
    ({"ikepolicy": []}, "Body contains invalid data"),
])
def test_bad_update_bodies(member, body, message):
    pid = ok(member.post(IKE, json={"ikepolicy": {}}))["ikepolicy"]["id"]
    assert error(member.put(f"{IKE}/{pid}", json=body), 400)["message"] == message


def test_malformed_json_and_huge_bodies(member):
    err = error(member.post(IKE, content=b"{not json"), 400)
    assert err["type"] == "MalformedRequestBody"
    assert error(member.post(IKE, content=b""), 400)["message"] == "Resource body required"
    huge = b'{"ikepolicy": {"name": "' + b"x" * (2 * 1024 * 1024) + b'"}}'
    assert error(member.post(IKE, content=huge), 413)["type"] == "HTTPRequestEntityTooLarge"
    assert ok(member.get(IKE), 200)["ikepolicies"] == []


def test_delete_twice_is_404(member):
    pid = ok(member.post(IKE, json={"ikepolicy": {}}))["ikepolicy"]["id"]
    assert member.delete(f"{IKE}/{pid}").status_code == 204
    err = error(member.delete(f"{IKE}/{pid}"), 404)
    assert err == {"type": "IKEPolicyNotFound", "detail": "",
                   "message": f"IKEPolicy {pid} could not be found"}


def test_unknown_path_and_method_are_neutron_errors(member):
    assert error(member.get("/v2.0/vpn/nothing"), 404)["type"] == "HTTPNotFound"
    assert error(member.patch(IKE, json={}), 405)["type"] == "HTTPMethodNotAllowed"
    assert error(member.post("/v2.0/ports", json={"port": {}}), 405)["type"] == \
        "HTTPMethodNotAllowed"


def test_json_suffix_is_accepted(member):
    ok(member.post(IKE, json={"ikepolicy": {"name": "j"}}))
    assert [p["name"] for p in ok(member.get(IKE + ".json"), 200)["ikepolicies"]] == ["j"]
