"""``GET /healthcheck`` on real servers: 200 when database and bus answer, 503 saying which not."""

from __future__ import annotations

import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import httpx
import psycopg

from tests.cli.test_commands import ISTHMUS, free_port, run, wait_for  # noqa: F401 (fixture)

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def server(run, tmp_path: Path, extra: str = "", database: str = "") -> str:
    port = free_port()
    conf = tmp_path / "isthmus.conf"
    conf.write_text(f"[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {port}\n"
                    f"state_path = {tmp_path / 'state'}\n{extra}\n"
                    f"[database]\nconnection = {database}\n")
    subprocess.run([ISTHMUS, "db", "upgrade", "--config-file", str(conf)], check=True,
                   capture_output=True, timeout=90)
    url = f"http://127.0.0.1:{port}"
    wait_for(url + "/", run("server", "--config-file", str(conf)))
    return url


def health(url: str, json: bool = False) -> httpx.Response:
    return httpx.get(url + "/healthcheck", timeout=30,
                     headers={"Accept": "application/json"} if json else {})


def test_up_is_healthy_without_credentials(tmp_path, run):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    wait_for(url + "/", run("up", "--data-dir", str(tmp_path), "--port", str(port)))
    answer = health(url)
    assert (answer.status_code, answer.text) == (200, "OK\n")
    detail = health(url, json=True).json()
    assert detail["reasons"] == []
    assert detail["checks"]["database"]["available"] is True
    assert detail["checks"]["message bus"]["available"] is True


def test_503_when_the_sqlite_directory_is_removed(tmp_path, run):
    url = server(run, tmp_path, "transport_url = fake://")
    assert health(url).status_code == 200
    shutil.rmtree(tmp_path / "state")
    answer = health(url)
    assert answer.status_code == 503
    assert answer.text.startswith("database: unable to open database file")
    assert health(url, json=True).json()["checks"]["database"]["available"] is False


def test_503_when_the_postgresql_database_is_dropped(tmp_path, run):
    name = f"isthmus_health_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        url = server(run, tmp_path, "transport_url = fake://",
                     database=f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
        assert health(url).status_code == 200
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    answer = health(url)
    assert answer.status_code == 503
    assert f'database "{name}" does not exist' in answer.text


def test_503_when_rabbitmq_is_unreachable_and_no_password_shown(tmp_path, run):
    # A port bound but not listening refuses connections, and stays ours meanwhile:
    # a port merely found free could be handed to the server itself as its API port.
    reserved = socket.socket()
    reserved.bind(("127.0.0.1", 0))
    closed = reserved.getsockname()[1]
    try:
        _check_unreachable_rabbitmq(tmp_path, run, closed)
    finally:
        reserved.close()


def _check_unreachable_rabbitmq(tmp_path, run, closed: int) -> None:
    url = server(run, tmp_path,
                 f"transport_url = rabbit://isthmus:s3cret@127.0.0.1:{closed}/")
    answer = health(url)
    assert answer.status_code == 503
    assert answer.text.startswith(f"message bus: 127.0.0.1:{closed}: ")
    assert "Connection refused" in answer.text
    detail = health(url, json=True)
    assert detail.status_code == 503
    assert detail.json()["checks"]["database"]["available"] is True
    assert detail.json()["checks"]["message bus"]["available"] is False
    assert "s3cret" not in answer.text + detail.text
    # The API itself still answers meanwhile.
    assert httpx.get(url + "/v2.0/vpn/ikepolicies", timeout=30).status_code == 200


def test_200_with_a_reachable_rabbitmq(tmp_path, run):
    url = server(run, tmp_path, "transport_url = rabbit://guest:guest@127.0.0.1:5672/")
    answer = health(url)
    assert (answer.status_code, answer.text) == (200, "OK\n")
