"""A PSK never reaches a log line or an error message: API, provider hook, RPC and agent.

Every log record of every logger is kept at DEBUG (see :mod:`tests.leaks`),
with this process's stdout and stderr, while site connections carrying canary
PSKs go through real HTTP, the service driver, the in-memory bus and the agent
(noop device driver). The strongSwan half is tests/e2e/test_secrets_not_logged.py.
"""

from __future__ import annotations

import sqlalchemy as sa

from isthmus.context import RequestContext
from isthmus.db import models
from tests.agent.conftest import wait_until
from tests.agent.test_embedded import create_connection, status
from tests.api.test_vpn_resources import CONNS, SERVICES
from tests.api.topology import ok
from tests.leaks import canary, every_log_line, leaks


def agent_psks(embedded, router_id: str) -> set[str]:
    """The PSKs of the router's connections as the agent last synced them."""
    state = embedded.agent.router_state(router_id)
    return {c["psk"] for s in (state.services if state else ())
            for c in s["ipsec_site_connections"]}


def refused(response, *secrets: str) -> str:
    """The error of a refused request, checked to echo none of ``secrets``."""
    assert response.status_code == 400, response.text
    assert not leaks(secrets, response.text), response.text
    return response.json()["NeutronError"]["message"]


def test_psks_reach_the_agent_but_no_log_line_or_error(embedded, member, topo, capfd):
    first, second, bad = canary(), canary(), canary()
    with every_log_line() as lines:
        service, conn = create_connection(member, topo, psk=first)
        url = f"{CONNS}/{conn['id']}"
        wait_until(lambda: agent_psks(embedded, topo.router) == {first})
        wait_until(lambda: status(member, url) == "ACTIVE")
        assert ok(member.get(url), 200)["ipsec_site_connection"]["psk"] == first
        listed = ok(member.get(CONNS, params={"psk": first}), 200)["ipsec_site_connections"]
        assert [c["id"] for c in listed] == [conn["id"]]

        ok(member.put(url, json={"ipsec_site_connection": {"psk": second}}), 200)
        wait_until(lambda: agent_psks(embedded, topo.router) == {second})
        wait_until(lambda: status(member, url) == "ACTIVE")

        body = {k: conn[k] for k in ("vpnservice_id", "ikepolicy_id", "ipsecpolicy_id",
                                     "peer_address", "peer_id", "peer_cidrs")}
        too_long = bad + "x" * 300
        assert "255" in refused(member.post(CONNS, json={"ipsec_site_connection": {
            **body, "psk": too_long}}), bad)
        assert "NUL" in refused(member.put(url, json={"ipsec_site_connection": {
            "psk": bad + "\x00"}}), bad)
        assert "mtu" in refused(member.put(url, json={"ipsec_site_connection": {
            "psk": bad, "mtu": "large"}}), bad)
        assert "Unrecognized" in refused(member.post(CONNS, json={"ipsec_site_connection": {
            **body, "psk": bad, "colour": "red"}}), bad)
        refused(member.post(CONNS, content=b'{"ipsec_site_connection": {"psk": "' +
                            bad.encode() + b'"'), bad)

        assert member.delete(url).status_code == 204
        assert member.delete(f"{SERVICES}/{service['id']}").status_code == 204
        wait_until(lambda: embedded.agent.router_state(topo.router) is None)
    out, err = capfd.readouterr()
    secrets = (first, second, bad)
    assert not leaks(secrets, "\n".join(lines)), "a PSK reached a log line"
    assert not leaks(secrets, out + err), "a PSK reached stdout or stderr"
    # The lines stay useful: the change by id, the filtered list with its value masked.
    assert any(conn["id"] in line and "Updated" in line for line in lines)
    assert any("ipsec-site-connections?psk=*** 200" in line for line in lines)


def test_provider_hook_names_the_connection_not_its_psk(embedded, admin, member, topo):
    """A change for a provider no longer configured is logged by id (it used to dump it)."""
    psk = canary()
    service, conn = create_connection(member, topo, psk=psk)
    table = models.Base.metadata.tables["vpnservices"]
    with embedded.api.db.write() as db:
        db.execute(sa.update(table).where(table.c.id == service["id"])
                   .values(provider="retired"))
    shown = ok(admin.get(f"{CONNS}/{conn['id']}"), 200)["ipsec_site_connection"]
    with every_log_line() as lines:
        embedded.runtime.providers.changed(RequestContext.admin(), "ipsec_site_connections",
                                           "delete", None, shown)
    assert not leaks([psk], "\n".join(lines)), "a PSK reached a log line"
    unrouted = [line for line in lines if "isthmus.drivers.service.providers" in line]
    assert unrouted and conn["id"] in unrouted[0], lines
