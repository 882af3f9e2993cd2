"""Operators' policy files: tightening and loosening rules, over real HTTP.

Each server is started from an ``isthmus.conf`` whose ``[oslo_policy]
policy_file`` is a bare name, so the file is found next to the configuration
file, as oslo.policy looks for it.
"""

from __future__ import annotations

import os
import shutil
from typing import Callable, Iterator

import httpx
import pytest

from isthmus import config
from isthmus.api import create_app
from isthmus.api.policy import Policy
from isthmus.db import Database
from isthmus.services import Services
from tests.api.test_policies import error
from tests.api.topology import ok
from tests.conftest import RunningServer, start_server

IKE = "/v2.0/vpn/ikepolicies"
ROUTERS = "/v2.0/routers"


@pytest.fixture
def served(tmp_path, migrated_sqlite) -> Iterator[Callable[[str], RunningServer]]:
    """Starts a server whose policy file holds the given YAML."""
    running: list[RunningServer] = []

    def start(policy_yaml: str) -> RunningServer:
        etc = tmp_path / "etc"
        etc.mkdir()
        (etc / "policy.yaml").write_text(policy_yaml)
        (etc / "isthmus.conf").write_text("[oslo_policy]\npolicy_file = policy.yaml\n")
        conf = config.load([], [str(etc / "isthmus.conf")])
        shutil.copy(migrated_sqlite, tmp_path / "isthmus.db")
        services = Services(Database(f"sqlite:///{tmp_path}/isthmus.db"))
        server = start_server("", migrate=False, services=services,
                              app=create_app(services, policy=Policy(conf)))
        running.append(server)
        return server
    yield start
    for server in running:
        server.stop()  # type: ignore[attr-defined]
        server.db.dispose()


def _clients(server: RunningServer) -> tuple[httpx.Client, httpx.Client, httpx.Client]:
    return (server.client("adminproj", roles="admin,member,reader", user="admin"),
            server.client("demoproj"), server.client("demoproj", roles="reader", user="r"))


def test_tightened_rule_hides_what_it_used_to_show(served):
    admin, member, _ = _clients(served('get_ikepolicy: "rule:admin_only"\n'))
    made = ok(member.post(IKE, json={"ikepolicy": {"name": "mine"}}))["ikepolicy"]
    assert ok(member.get(IKE), 200)["ikepolicies"] == []
    assert error(member.get(f"{IKE}/{made['id']}"), 404)["type"] == "HTTPNotFound"
    assert error(member.put(f"{IKE}/{made['id']}", json={"ikepolicy": {"name": "x"}}), 404)
    assert error(member.delete(f"{IKE}/{made['id']}"), 404)
    assert ok(admin.get(f"{IKE}/{made['id']}"), 200)["ikepolicy"]["name"] == "mine"


def test_loosened_rule_lets_a_reader_create_and_read(served):
    _, member, reader = _clients(served(
        'create_ikepolicy: "role:reader and project_id:%(project_id)s"\n'
        'get_ikepolicy: "role:reader and project_id:%(project_id)s"\n'))
    made = ok(reader.post(IKE, json={"ikepolicy": {"name": "by-reader"}}))["ikepolicy"]
    assert made["project_id"] == "demoproj"
    assert [p["name"] for p in ok(member.get(IKE), 200)["ikepolicies"]] == ["by-reader"]
    assert ok(reader.get(f"{IKE}/{made['id']}"), 200)
    # Only the rules named were changed: deleting is still for members.
    assert error(reader.delete(f"{IKE}/{made['id']}"), 403)["message"] == \
        "rule:delete_ikepolicy is disallowed by policy"


def test_field_rule_from_the_file_hides_the_field_its_filter_and_its_sort(served):
    admin, member, _ = _clients(served('"get_ikepolicy:pfs": "rule:admin_only"\n'))
    made = ok(member.post(IKE, json={"ikepolicy": {"pfs": "group14"}}))["ikepolicy"]
    assert "pfs" not in made
    assert "pfs" not in ok(member.get(f"{IKE}/{made['id']}"), 200)["ikepolicy"]
    for value in ("group14", "group5"):
        assert [p["id"] for p in ok(member.get(IKE, params={"pfs": value}), 200)[
            "ikepolicies"]] == [made["id"]]
    assert error(member.get(IKE, params={"sort_key": "pfs"}), 400)["message"] == \
        "['pfs'] is invalid attribute for sort_keys"
    assert ok(admin.get(IKE, params={"pfs": "group5"}), 200)["ikepolicies"] == []
    assert ok(admin.get(f"{IKE}/{made['id']}"), 200)["ikepolicy"]["pfs"] == "group14"


def test_loosened_field_rule_shows_the_field_and_lets_it_be_filtered(served):
    admin, member, _ = _clients(served(
        '"get_router:isthmus:agent_host": "rule:admin_or_owner"\n'))
    for host in ("vm", "other"):
        ok(admin.post(ROUTERS, json={"router": {"isthmus:agent_host": host,
                                                "project_id": "demoproj"}}))
    found = ok(member.get(ROUTERS, params={"isthmus:agent_host": "vm"}), 200)["routers"]
    assert [r["isthmus:agent_host"] for r in found] == ["vm"]
    assert "isthmus:namespace" not in found[0]


def test_changed_file_applies_to_the_next_request_and_a_broken_one_keeps_the_last(
        served, tmp_path):
    _, member, _ = _clients(served(""))
    made = ok(member.post(IKE, json={"ikepolicy": {}}))["ikepolicy"]
    assert ok(member.get(f"{IKE}/{made['id']}"), 200)
    policy_file = tmp_path / "etc" / "policy.yaml"

    def rewrite(text: str, later_s: int) -> None:
        policy_file.write_text(text)
        stamp = policy_file.stat().st_mtime + later_s   # a change oslo.policy must notice
        os.utime(policy_file, (stamp, stamp))

    rewrite('get_ikepolicy: "rule:admin_only"\n', 10)
    assert error(member.get(f"{IKE}/{made['id']}"), 404)["type"] == "HTTPNotFound"
    rewrite("get_ikepolicy: [broken\n", 20)
    assert error(member.get(f"{IKE}/{made['id']}"), 404)["type"] == "HTTPNotFound"
    rewrite("", 30)
    assert ok(member.get(f"{IKE}/{made['id']}"), 200)
