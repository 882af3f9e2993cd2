"""Keystone mode with keystonemiddleware really in the pipeline (no Keystone server here).

With ``delay_auth_decision = true`` keystonemiddleware lets requests without a
valid token through, marked ``X-Identity-Status: Invalid``, and leaves the
decision to the service: Isthmus must refuse them with keystonemiddleware's own
401, and keep the version document public.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Iterator

import pytest

from isthmus import config
from isthmus.api import create_app, with_keystone
from isthmus.context import RequestContext
from isthmus.db import Database
from isthmus.services import Services
from tests.conftest import RunningServer, start_server

UNAUTHORIZED = {"error": {"code": 401, "title": "Unauthorized",
                          "message": "The request you have made requires authentication."}}


def _closed_port() -> int:
    """A loopback port nothing listens on: the identity server is unreachable."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keystone_conf(tmp_path: Path) -> Path:
    """An isthmus.conf in ``tmp_path`` with ``auth_strategy = keystone`` and an identity
    server nobody answers at: only what keystonemiddleware decides alone is tested."""
    identity = f"http://127.0.0.1:{_closed_port()}/identity"
    conf_file = tmp_path / "isthmus.conf"
    conf_file.write_text(
        "[DEFAULT]\nauth_strategy = keystone\n\n"
        "[keystone_authtoken]\n"
        f"www_authenticate_uri = {identity}\nauth_url = {identity}\n"
        "auth_type = password\nusername = isthmus\npassword = not-a-secret\n"
        "project_name = service\nuser_domain_name = Default\n"
        "project_domain_name = Default\n"
        "delay_auth_decision = true\nhttp_request_max_retries = 0\n"
        "http_connect_timeout = 2\n")
    return conf_file


@pytest.fixture
def keystone_api(tmp_path, migrated_sqlite) -> Iterator[RunningServer]:
    conf = config.load([], [str(keystone_conf(tmp_path))])
    db_file = tmp_path / "isthmus.db"
    db_file.write_bytes(Path(migrated_sqlite).read_bytes())
    url = f"sqlite:///{db_file}"
    services = Services(Database(url))
    app = with_keystone(create_app(services, auth_strategy="keystone"), conf)
    running = start_server(url, migrate=False, app=app, services=services)
    yield running
    running.stop()  # type: ignore[attr-defined]
    running.db.dispose()


@pytest.mark.parametrize("headers", [
    {},
    {"X-Auth-Token": "bogus-token"},
    # Identity headers a client forges are removed by keystonemiddleware first.
    {"X-Auth-Token": "bogus-token", "X-Identity-Status": "Confirmed",
     "X-Project-Id": "p", "X-Roles": "admin"},
], ids=["no token", "bogus token", "bogus token, forged headers"])
def test_delayed_auth_decision_refuses_requests_without_a_valid_token(keystone_api, headers):
    with keystone_api.client() as client:
        for path in ("/v2.0/vpn/ikepolicies", "/v2.0/networks", "/v2.0/extensions"):
            response = client.get(path, headers=headers)
            assert response.status_code == 401, (path, response.text)
            assert response.json() == UNAUTHORIZED
            assert response.headers["WWW-Authenticate"].startswith('Keystone uri="http://')
        created = client.post("/v2.0/vpn/ikepolicies", headers=headers,
                              json={"ikepolicy": {"name": "x"}})
        assert created.status_code == 401
    assert keystone_api.services.list(RequestContext.admin(), "ikepolicies", {}) == []


def test_version_document_stays_public(keystone_api):
    with keystone_api.client() as client:
        response = client.get("/")
    assert response.status_code == 200
    assert response.json()["versions"]


def test_noauth_mode_ignores_identity_status(member):
    response = member.get("/v2.0/vpn/ikepolicies", headers={"X-Identity-Status": "Invalid"})
    assert response.status_code == 200
