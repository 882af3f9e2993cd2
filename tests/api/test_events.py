"""The event history (GET /v2.0/vpn/events) and its stream, over real HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import orjson
import sqlalchemy as sa

from isthmus import events
from isthmus.api import create_app
from isthmus.db.collection import now
from tests.api.test_vpn_resources import CONNS, make_policies
from tests.api.topology import ok
from tests.conftest import start_server

EVENTS = "/v2.0/vpn/events"
PSK = "the-Sup3r-secret-psk"


def make_connection(member, topo, api=None) -> dict:
    ike, ipsec = make_policies(member)
    service = ok(member.post("/v2.0/vpn/vpnservices", json={"vpnservice": {
        "router_id": topo.router, "subnet_id": topo.subnet_a}}))["vpnservice"]
    conn = ok(member.post(CONNS, json={"ipsec_site_connection": {
        "vpnservice_id": service["id"], "ikepolicy_id": ike, "ipsecpolicy_id": ipsec,
        "peer_address": "203.0.113.5", "peer_id": "203.0.113.5", "psk": PSK,
        "peer_cidrs": ["10.50.0.0/24"]}}))["ipsec_site_connection"]
    if api is not None:   # no agent here: as if one had reported it up (updatable)
        from isthmus.vpn.site_connections import CONNECTIONS
        with api.db.write() as db:
            db.execute(sa.update(CONNECTIONS).where(CONNECTIONS.c.id == conn["id"])
                       .values(status="ACTIVE"))
    return conn


def listed(client, **params) -> list[dict]:
    return ok(client.get(EVENTS, params=params), 200)["events"]


def test_api_changes_are_recorded_with_who_and_what_never_the_psk(api, member, topo):
    conn = make_connection(member, topo, api)
    url = f"{CONNS}/{conn['id']}"
    ok(member.put(url, json={"ipsec_site_connection": {"psk": PSK + "2", "name": "x"}}), 200)
    ok(member.put(url, json={"ipsec_site_connection": {"name": "x"}}), 200)   # no change
    assert member.delete(url).status_code == 204

    history = listed(member, resource_id=conn["id"])
    assert [(e["kind"], e["action"], e["changed"]) for e in history] == [
        ("api", "create", []), ("api", "update", ["name", "psk"]), ("api", "update", []),
        ("api", "delete", [])]
    for event in history:
        assert event["resource_type"] == "ipsec_site_connection"
        assert event["user_id"] == "user" and event["project_id"] == "demoproj"
        assert event["tenant_id"] == "demoproj"
        assert event["request_id"].startswith("req-")
        assert event["created_at"].endswith("Z")
    ids = [e["id"] for e in history]
    assert ids == sorted(ids) and len(set(ids)) == 4
    # The whole history, as the admin and the member see it, never holds the PSK.
    with api.client("adminproj", roles="admin,member,reader") as admin:
        everything = admin.get(EVENTS).content
    assert PSK.encode() not in everything and PSK.encode() not in member.get(EVENTS).content
    # Router interfaces added by the topology are in the router's history.
    actions = [e["action"] for e in listed(member, resource_id=topo.router)]
    assert "add_router_interface" in actions
    assert ok(member.get(f"{EVENTS}/{ids[1]}"), 200)["event"]["changed"] == ["name", "psk"]


def test_filters_paging_and_project_scoping(api, member, other, reader, topo):
    conn = make_connection(member, topo, api)
    for n in range(3):
        ok(member.put(f"{CONNS}/{conn['id']}",
                      json={"ipsec_site_connection": {"name": f"n{n}"}}), 200)
    mine = listed(member, resource_id=conn["id"], kind="api")
    assert len(mine) == 4
    # Pages of two, by marker, in id order, with Neutron's links.
    first = ok(member.get(EVENTS, params={"resource_id": conn["id"], "limit": 2}), 200)
    assert [e["id"] for e in first["events"]] == [e["id"] for e in mine[:2]]
    assert any(link["rel"] == "next" for link in first["events_links"])
    second = listed(member, resource_id=conn["id"], limit=2, marker=mine[1]["id"])
    assert [e["id"] for e in second] == [e["id"] for e in mine[2:]]
    backwards = listed(member, resource_id=conn["id"], limit=2, marker=mine[2]["id"],
                       page_reverse="true")
    assert [e["id"] for e in backwards] == [e["id"] for e in mine[:2]]
    newest = listed(member, resource_id=conn["id"], sort_key="id", sort_dir="desc", limit=1)
    assert newest[0]["id"] == mine[-1]["id"]
    assert listed(member, resource_type="ipsec_site_connection", action="create",
                  fields="id")[0] == {"id": mine[0]["id"]}
    assert all(e["kind"] == "status" for e in listed(member, kind="status"))
    # Another project sees nothing of it, not even by id; a reader sees it all.
    assert listed(other) == []
    assert other.get(f"{EVENTS}/{mine[0]['id']}").status_code == 404
    assert [e["id"] for e in listed(reader, resource_id=conn["id"])] == \
        [e["id"] for e in mine]
    assert member.get(f"{EVENTS}/not-a-number").status_code == 404
    assert member.get(EVENTS, params={"marker": "abc", "limit": 1}).status_code == 404
    assert member.post(EVENTS, json={"event": {}}).status_code == 405


def test_time_range(api, member, topo):
    conn = make_connection(member, topo, api)
    table = events.EVENTS
    long_ago = datetime(2020, 1, 1)
    with api.db.write() as db:   # the create happened long ago
        db.execute(sa.update(table).where(table.c.resource_id == conn["id"])
                   .values(created_at=long_ago))
    ok(member.put(f"{CONNS}/{conn['id']}", json={"ipsec_site_connection": {"name": "y"}}),
       200)
    def actions(**params) -> list[str]:
        return [e["action"] for e in listed(member, resource_id=conn["id"], **params)]
    assert actions() == ["create", "update"]
    assert actions(since="2021-01-01T00:00:00Z") == ["update"]
    assert actions(until="2021-01-01") == ["create"]
    assert actions(since="2020-01-01T00:00:00Z", until="2020-01-01T00:00:01Z") == ["create"]
    assert actions(since="2020-01-01T01:00:00+02:00", limit=5) == ["create", "update"]
    assert actions(since="2020-01-01T00:00:01Z", limit=1) == ["update"]
    bad = member.get(EVENTS, params={"since": "yesterday"})
    assert bad.status_code == 400 and "since" in bad.json()["NeutronError"]["message"]


def test_retention_purge_deletes_old_events_and_keeps_the_newest(api, member, topo):
    conn = make_connection(member, topo, api)
    table = events.EVENTS
    with api.db.write() as db:
        db.execute(sa.update(table).values(created_at=now() - timedelta(days=40)))
        assert events.purge(db, 0) == 0          # 0: kept forever
        latest = db.execute(sa.select(sa.func.max(table.c.id))).scalar()
        purged = events.purge(db, 30)
    assert purged > 0
    assert [e["id"] for e in listed(member)] == [latest]
    ok(member.put(f"{CONNS}/{conn['id']}", json={"ipsec_site_connection": {"name": "z"}}),
       200)
    assert [e["action"] for e in listed(member, resource_id=conn["id"])][-1] == "update"
    assert listed(member)[-1]["id"] > latest     # ids go on after a purge


# ---------------------------------------------------------------------- the stream

def read_frames(response: httpx.Response, count: int) -> list[dict]:
    """The next ``count`` events of an open stream (comments skipped)."""
    frames: list[dict] = []
    current: dict = {}
    if not hasattr(response, "sse_lines"):   # one line iterator per response
        response.sse_lines = response.iter_lines()  # type: ignore[attr-defined]
    for line in response.sse_lines:  # type: ignore[attr-defined]
        if line.startswith(":") or line.startswith("retry:"):
            continue
        if line == "":
            if current:
                frames.append(current)
                current = {}
                if len(frames) == count:
                    return frames
            continue
        key, _, value = line.partition(": ")
        current[key] = orjson.loads(value) if key == "data" else value
    raise AssertionError(f"stream ended after {frames}")


def test_stream_resumes_with_last_event_id(api, member, topo):
    conn = make_connection(member, topo, api)
    url = f"{CONNS}/{conn['id']}"
    with member.stream("GET", EVENTS, params={"stream": "true", "resource_id": conn["id"]}
                       ) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        ok(member.put(url, json={"ipsec_site_connection": {"name": "seen"}}), 200)
        [seen] = read_frames(stream, 1)
    assert seen["event"] == "api" and seen["data"]["action"] == "update"
    assert seen["data"]["changed"] == ["name"] and int(seen["id"]) == seen["data"]["id"]
    # Missed while disconnected: exactly these come back, in order, then live ones.
    for name in ("missed-1", "missed-2"):
        ok(member.put(url, json={"ipsec_site_connection": {"name": name}}), 200)
    ok(member.post("/v2.0/vpn/ikepolicies", json={"ikepolicy": {"name": "filtered-out"}}))
    with member.stream("GET", EVENTS, params={"stream": "true", "resource_id": conn["id"]},
                       headers={"Last-Event-ID": seen["id"]}) as stream:
        missed = read_frames(stream, 2)
        ok(member.put(url, json={"ipsec_site_connection": {"admin_state_up": False}}), 200)
        [live] = read_frames(stream, 1)
    history = listed(member, resource_id=conn["id"])
    after_seen = [e for e in history if e["id"] > int(seen["id"])]
    assert [f["data"] for f in missed + [live]] == after_seen
    assert live["data"]["changed"] == ["admin_state_up"]
    # ?after= resumes as the header does; PSK never in what streamed.
    with member.stream("GET", EVENTS, params={"stream": "true", "after": 0,
                                              "resource_id": conn["id"]}) as stream:
        replay = read_frames(stream, len(history))
    assert [f["data"] for f in replay] == history
    assert PSK not in str(replay)


def test_stream_is_project_scoped(api, member, other, topo):
    conn = make_connection(member, topo, api)
    with other.stream("GET", EVENTS, params={"stream": "true", "after": 0}) as theirs:
        with member.stream("GET", EVENTS, params={"stream": "true"}) as mine:
            ok(member.put(f"{CONNS}/{conn['id']}",
                          json={"ipsec_site_connection": {"name": "a"}}), 200)
            ok(other.post("/v2.0/vpn/ikepolicies", json={"ikepolicy": {"name": "theirs"}}))
            [own] = read_frames(mine, 1)
            [their] = read_frames(theirs, 1)
    assert own["data"]["resource_id"] == conn["id"]
    assert their["data"]["project_id"] == "otherproj"
    assert their["data"]["resource_type"] == "ikepolicy"


def test_stream_cap_answers_503_and_bad_resume_400(api, member):
    app = create_app(api.services, event_stream_limit=1)
    capped = start_server(api.db.url, migrate=False, app=app, services=api.services)
    try:
        with capped.client("demoproj") as client:
            with client.stream("GET", EVENTS, params={"stream": "true"}) as first:
                assert first.status_code == 200
                refused = client.get(EVENTS, params={"stream": "true"})
                assert refused.status_code == 503
                assert refused.json()["NeutronError"]["type"] == "ServiceUnavailable"
                assert "event_stream_limit" in refused.json()["NeutronError"]["message"]
                assert client.get(EVENTS).status_code == 200   # the list is not capped
            bad = client.get(EVENTS, params={"stream": "true"},
                             headers={"Last-Event-ID": "x"})
            assert bad.status_code == 400
    finally:
        capped.stop()  # type: ignore[attr-defined]


def test_open_streams_hold_none_of_the_request_threads(api, member):
    # One request thread (api_threads = 1) and two streams open: each waits for
    # events outside the threads that run the application, so requests still pass.
    app = create_app(api.services, event_stream_limit=2)
    narrow = start_server(api.db.url, migrate=False, app=app, services=api.services,
                          threads=1)
    try:
        with narrow.client("demoproj") as client:
            with client.stream("GET", EVENTS, params={"stream": "true"}) as one, \
                    client.stream("GET", EVENTS, params={"stream": "true"}) as two:
                assert one.status_code == two.status_code == 200
                created = client.post("/v2.0/vpn/ikepolicies",
                                      json={"ikepolicy": {"name": "while-streaming"}})
                assert created.status_code == 201, created.text
                policy = created.json()["ikepolicy"]["id"]
                assert [f["data"]["resource_id"] for f in read_frames(one, 1)] == [policy]
                assert [f["data"]["resource_id"] for f in read_frames(two, 1)] == [policy]
                assert client.get(f"/v2.0/vpn/ikepolicies/{policy}").status_code == 200
    finally:
        narrow.stop()  # type: ignore[attr-defined]
