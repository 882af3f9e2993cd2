"""The ``libreswan`` peer format, checked by libreswan's own parsers when it is unpacked.

``algparse`` parses every proposal this module can write, and refuses each
algorithm the module's tables leave out (so :class:`Unsupported` is raised for
what libreswan really lacks, not for a guess); ``addconn --checkconfig`` reads
whole conn sections as pluto would.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from isthmus.peers import PSK_PLACEHOLDER, Unsupported, libreswan
from isthmus.vpn import constants
from tests.peer_configs.from_payload import view
from tests.peers import libreswan as unpacked


def keyword(text: str, key: str) -> list[str]:
    """Every value of ``key=`` in a conn section."""
    return re.findall(rf"^    {re.escape(key)}=(.*)$", text, re.MULTILINE)


def conf_and_secrets(text: str) -> tuple[str, str]:
    """The download's two files: the conn section, and the ipsec.secrets part."""
    conf, marker, secrets = text.partition("\n# ipsec.secrets")
    assert marker
    return conf, (marker + secrets).lstrip("\n")


def test_a_whole_configuration():
    conf, secrets = conf_and_secrets(libreswan.render(view(local_id="@a.example",
                                                           peer_id="@b.example")))
    assert conf.splitlines()[3:] == """conn isthmus-c1
    ikev2=insist
    authby=secret
    left=198.51.100.20
    leftid=@b.example
    leftsubnet=10.2.0.0/24
    right=198.51.100.10
    rightid=@a.example
    rightsubnet=10.1.0.0/24
    ike=aes128-sha2_256-modp2048
    phase2=esp
    esp=aes128-sha2_256-modp2048
    pfs=yes
    type=tunnel
    dpddelay=30
    dpdtimeout=120
    dpdaction=hold
    ikelifetime=3600s
    salifetime=3600s
    auto=ondemand
""".splitlines()
    assert secrets.splitlines()[1:] == ['@b.example @a.example : PSK "secret"']


@pytest.mark.parametrize("change, expected", [
    ({"ipsec": {"encryption_algorithm": "aes-256-gcm-16"}}, {"esp": "aes_gcm_c256-null-modp2048"}),
    ({"ipsec": {"encryption_algorithm": "aes-128-ccm-8", "pfs": ""}},
     {"esp": "aes_ccm_a128-null", "pfs": "no"}),
    ({"ike": {"encryption_algorithm": "aes-192-gcm-12", "auth_algorithm": "sha384",
              "pfs": "group31"}}, {"ike": "aes_gcm_b192-sha2_384-dh31"}),
    ({"ike": {"encryption_algorithm": "aes-256-ctr", "auth_algorithm": "aes-xcbc",
              "pfs": "group19"}}, {"ike": "aes_ctr256-aes_xcbc-dh19"}),
    ({"ipsec": {"transform_protocol": "ah", "auth_algorithm": "aes-cmac"}},
     {"phase2": "ah", "ah": "aes_cmac-modp2048"}),
    ({"ike": {"ike_version": "v1", "phase1_negotiation_mode": "aggressive"}},
     {"ikev2": "no", "aggressive": "yes"}),
    ({"ipsec": {"encapsulation_mode": "transport"}}, {"type": "transport"}),
    ({"ipsec": {"lifetime": {"units": "kilobytes", "value": 1000}}},
     {"ipsec-max-bytes": "1000KiB", "salifetime": None}),
    ({"initiator": "response-only"}, {"auto": "start"}),
    ({"dpd": {"action": "restart-by-peer", "interval": 5, "timeout": 20}},
     {"dpdaction": "restart", "dpddelay": "5", "dpdtimeout": "20"}),
    ({"dpd": {"action": "disabled", "interval": 5, "timeout": 20}},
     {"dpdaction": None, "dpddelay": None}),
    ({"peer_cidrs": ["10.2.0.0/24", "10.3.0.0/24"]},
     {"leftsubnets": "{10.2.0.0/24 10.3.0.0/24}", "leftsubnet": None}),
])
def test_rows(change, expected):
    text = libreswan.render(view(**change))
    for key, value in expected.items():
        assert keyword(text, key) == ([] if value is None else [value]), key


def test_psk_placeholder_and_base64():
    [line] = conf_and_secrets(libreswan.render(view(psk_visible=False)))[1].splitlines()[1:]
    assert line.endswith(f'PSK "{PSK_PLACEHOLDER}"')
    [line] = conf_and_secrets(libreswan.render(view(psk='a"b')))[1].splitlines()[1:]
    assert line.endswith(": PSK 0sYSJi")


def test_a_name_cannot_inject_configuration():
    text = libreswan.render(view(name="x\nconn evil\n    left=%any"))
    assert re.findall(r"^conn .*$", text, re.MULTILINE) == ["conn isthmus-c1"]
    assert keyword(text, "left") == ["198.51.100.20"]


@pytest.mark.parametrize("change, field, value", [
    ({"ike": {"pfs": "group2"}}, "ikepolicy.pfs", "group2"),
    ({"ipsec": {"pfs": "group24"}}, "ipsecpolicy.pfs", "group24"),
    ({"ike": {"pfs": "group28"}}, "ikepolicy.pfs", "group28"),
    ({"ike": {"encryption_algorithm": "aes-128-ccm-16"}}, "ikepolicy.encryption_algorithm",
     "aes-128-ccm-16"),
    ({"ike": {"auth_algorithm": "aes-cmac"}}, "ikepolicy.auth_algorithm", "aes-cmac"),
    ({"ike": {"ike_version": "v1", "encryption_algorithm": "aes-128-gcm-16"}},
     "ikepolicy.encryption_algorithm", "aes-128-gcm-16"),
    ({"ike": {"ike_version": "v1", "auth_algorithm": "aes-xcbc"}},
     "ikepolicy.auth_algorithm", "aes-xcbc"),
    ({"ike": {"lifetime": {"units": "seconds", "value": 86401}}}, "ikepolicy.lifetime",
     "86401 seconds"),
    ({"ipsec": {"transform_protocol": "ah-esp"}}, "ipsecpolicy.transform_protocol", "ah-esp"),
    ({"peer_id": 'x"y'}, "peer_id", 'x"y'),
])
def test_what_libreswan_cannot_do_names_the_field(change, field, value):
    with pytest.raises(Unsupported) as raised:
        libreswan.render(view(**change))
    assert (raised.value.fmt, raised.value.field, raised.value.value) == \
        ("libreswan", field, value)


def test_every_api_value_is_mapped_or_refused():
    for table, names in ((libreswan.ENCRYPTION, constants.ENCRYPTION_ALGORITHMS),
                         (libreswan.INTEGRITY, constants.AUTH_ALGORITHMS)):
        assert set(names) <= set(table)
    missing = set(constants.PFS_GROUPS) - set(libreswan.DH_GROUPS)
    assert missing == {"group2", *(f"group{n}" for n in range(22, 31))}


# -- libreswan's own parsers -----------------------------------------------------------
def _libreswan_env() -> dict[str, str]:
    return {"LD_LIBRARY_PATH": unpacked.library_path(), "PATH": "/usr/bin:/bin"}


def _tool(name: str) -> Path:
    return unpacked.ROOT / "usr/libexec/ipsec" / name


def _missing() -> str | None:
    reason = unpacked.missing()
    if reason and os.environ.get("ISTHMUS_TEST_REQUIRE_PLUTO") == "1":
        pytest.fail(reason)
    return reason


def algparse(*args: str) -> str:
    result = subprocess.run([str(_tool("algparse")), *args], capture_output=True, text=True,
                            timeout=30, env=_libreswan_env())
    return result.stdout + result.stderr


def _proposals(text: str) -> list[tuple[str, str]]:
    """(algparse option, proposal) for the conn's ike= and esp=/ah= lines."""
    version = "-v2" if keyword(text, "ikev2") == ["insist"] else "-v1"
    phase2 = keyword(text, "phase2")[0]
    return [(version, f"ike={keyword(text, 'ike')[0]}"),
            (version, f"{phase2}={keyword(text, phase2)[0]}")]


def test_algparse_parses_every_proposal_written():
    if _missing():
        pytest.skip(_missing())
    renderings = []
    for name in libreswan.ENCRYPTION:
        renderings.append(view(ipsec={"encryption_algorithm": name}))
        if name not in libreswan.NOT_IN_IKE:
            renderings.append(view(ike={"encryption_algorithm": name}))
    for name in libreswan.INTEGRITY:
        renderings.append(view(ipsec={"auth_algorithm": name}))
        renderings.append(view(ipsec={"auth_algorithm": name, "transform_protocol": "ah"}))
        if name not in libreswan.NOT_IN_IKE:
            renderings.append(view(ike={"auth_algorithm": name}))
    for name in libreswan.DH_GROUPS:
        renderings.append(view(ike={"pfs": name}, ipsec={"pfs": name}))
    renderings.append(view(ike={"ike_version": "v1"}))
    for peer_view in renderings:
        for version, proposal in _proposals(libreswan.render(peer_view)):
            out = algparse(version, "-pfs", proposal)
            assert "ERROR" not in out and out.strip().splitlines()[-1].startswith("\t"), \
                (proposal, out)


@pytest.mark.parametrize("proposal", [
    *(f"ike=aes128-sha2_256-dh{n}" for n in (2, *range(22, 31))),   # groups left out
    "ike=aes_ccm_c128-sha2_256-modp2048",                             # no CCM in IKE
    "ike=aes128-aes_cmac-modp2048",                                   # no AES-CMAC PRF
])
def test_algparse_refuses_what_the_tables_leave_out(proposal):
    if _missing():
        pytest.skip(_missing())
    assert "ERROR" in algparse("-v2", proposal)


def test_addconn_checks_every_conn_section(tmp_path):
    if _missing():
        pytest.skip(_missing())
    renderings = [
        view(), view(initiator="response-only"), view(ike={"ike_version": "v1",
                                                           "phase1_negotiation_mode":
                                                           "aggressive"}),
        view(ipsec={"transform_protocol": "ah"}),
        view(ipsec={"encapsulation_mode": "transport", "pfs": ""}),
        view(ipsec={"lifetime": {"units": "kilobytes", "value": 1000}}),
        view(dpd={"action": "restart-by-peer", "interval": 5, "timeout": 20}),
        view(dpd={"action": "disabled", "interval": 5, "timeout": 20}),
        view(peer_cidrs=["10.2.0.0/24", "10.3.0.0/24"], local_id="CN=a, O=Example"),
        view(name="two\nlines", psk_visible=False),
    ]
    for n, peer_view in enumerate(renderings):
        conf, secrets = conf_and_secrets(libreswan.render(peer_view))
        path = tmp_path / f"ipsec{n}.conf"
        path.write_text("config setup\n\n" + conf)
        result = subprocess.run([str(_tool("addconn")), "--config", str(path),
                                 "--checkconfig"], capture_output=True, text=True,
                                timeout=30, env=_libreswan_env())
        assert result.returncode == 0, (conf, result.stdout + result.stderr)
