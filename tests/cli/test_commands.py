"""The ``isthmus`` commands as an operator runs them: real processes, real sockets."""

from __future__ import annotations

import os
import time
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ISTHMUS = str(Path(sys.executable).with_name("isthmus"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.terminate()   # what it said is the only clue to why it never answered
    try:
        output = proc.communicate(timeout=10)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        output = proc.communicate()[0]
    raise AssertionError(f"server did not answer within {timeout_s}s; it said:\n{output}")


@pytest.fixture
def run():
    procs: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        proc = subprocess.Popen([ISTHMUS, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        procs.append(proc)
        return proc
    yield start
    stop_all(procs)


def stop_all(procs: list[subprocess.Popen]) -> None:
    """SIGTERM each process, SIGKILL what has not exited 10 s later."""
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_up_creates_its_database_and_serves(tmp_path, run):
    port = free_port()
    data = tmp_path / "data"
    proc = run("up", "--data-dir", str(data), "--port", str(port))
    wait_for(f"http://127.0.0.1:{port}/", proc)
    created = httpx.post(f"http://127.0.0.1:{port}/v2.0/vpn/ikepolicies",
                         json={"ikepolicy": {"name": "kept"}})
    assert created.status_code == 201
    assert (data / "isthmus.db").exists()
    proc.terminate()
    proc.wait(timeout=10)
    # A restart keeps the data.
    proc = run("up", "--data-dir", str(data), "--port", str(port))
    wait_for(f"http://127.0.0.1:{port}/", proc)
    names = [p["name"] for p in httpx.get(
        f"http://127.0.0.1:{port}/v2.0/vpn/ikepolicies").json()["ikepolicies"]]
    assert names == ["kept"]


def test_db_upgrade_and_server_from_config_file(tmp_path, run):
    port = free_port()
    conf = tmp_path / "isthmus.conf"
    conf.write_text(f"[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {port}\n"
                    f"state_path = {tmp_path}\n")
    upgraded = subprocess.run([ISTHMUS, "db", "upgrade", "--config-file", str(conf)],
                              capture_output=True, text=True)
    assert upgraded.returncode == 0, upgraded.stderr
    from isthmus.db.migrate import newest_revision
    assert f"Database at revision {newest_revision()}" in upgraded.stdout
    proc = run("server", "--config-file", str(conf))
    wait_for(f"http://127.0.0.1:{port}/", proc)
    assert httpx.get(f"http://127.0.0.1:{port}/v2.0/vpn/vpnservices").json() == \
        {"vpnservices": []}


def test_keystone_strategy_requires_a_token_but_not_for_versions(tmp_path, run):
    port = free_port()
    conf = tmp_path / "isthmus.conf"
    conf.write_text(f"[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {port}\n"
                    f"state_path = {tmp_path}\nauth_strategy = keystone\n\n"
                    "[keystone_authtoken]\nwww_authenticate_uri = http://127.0.0.1:5000/\n")
    subprocess.run([ISTHMUS, "db", "upgrade", "--config-file", str(conf)], check=True,
                   capture_output=True)
    proc = run("server", "--config-file", str(conf))
    wait_for(f"http://127.0.0.1:{port}/", proc)
    assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
    denied = httpx.get(f"http://127.0.0.1:{port}/v2.0/vpn/ikepolicies",
                       headers={"X-Project-Id": "p", "X-Roles": "admin"})
    assert denied.status_code == 401


def test_bad_config_file_is_a_clear_error(tmp_path):
    conf = tmp_path / "broken.conf"
    conf.write_text("[DEFAULT]\nbind_port = notaport\n")
    result = subprocess.run([ISTHMUS, "server", "--config-file", str(conf)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "bind_port" in result.stderr and "Traceback" not in result.stderr


def test_sample_config_is_generated_not_hand_kept(tmp_path):
    out = tmp_path / "isthmus.conf.sample"
    subprocess.run([str(Path(sys.executable).with_name("oslo-config-generator")),
                    "--config-file", str(ROOT / "etc/oslo-config-generator/isthmus.conf"),
                    "--output-file", str(out)], check=True, cwd=ROOT,
                   env={**os.environ})
    assert out.read_text() == (ROOT / "etc/isthmus.conf.sample").read_text(), \
        "etc/isthmus.conf.sample is stale: run oslo-config-generator " \
        "--config-file etc/oslo-config-generator/isthmus.conf"


def test_up_runs_the_agent_too_connections_go_active(tmp_path, run):
    from tests.agent.conftest import wait_until
    from tests.api.test_vpn_resources import CONNS
    from tests.api.topology import build
    from tests.agent.test_embedded import create_connection

    port = free_port()
    proc = run("up", "--data-dir", str(tmp_path / "data"), "--port", str(port))
    wait_for(f"http://127.0.0.1:{port}/", proc)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, headers={"X-Project-Id": "admin", "X-Roles": "admin"}) \
            as admin, httpx.Client(base_url=base, headers={"X-Project-Id": "demo"}) as member:
        topo = build(admin, member)
        _, conn = create_connection(member, topo)
        wait_until(lambda: member.get(f"{CONNS}/{conn['id']}").json()[
            "ipsec_site_connection"]["status"] == "ACTIVE", timeout_s=30)


def test_server_with_a_broken_driver_refuses_to_start(tmp_path):
    conf = tmp_path / "isthmus.conf"
    conf.write_text(f"[DEFAULT]\nstate_path = {tmp_path}\nbind_port = {free_port()}\n"
                    "transport_url = fake://\n\n[service_providers]\n"
                    "service_provider = VPN:mine:isthmus.drivers.service.ipsek.Driver:default\n")
    subprocess.run([ISTHMUS, "db", "upgrade", "--config-file", str(conf)], check=True,
                   capture_output=True)
    result = subprocess.run([ISTHMUS, "server", "--config-file", str(conf)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    message = result.stderr
    assert "[service_providers] service_provider" in message and str(conf) in message
    assert "isthmus.drivers.service.ipsek" in message and "ipsec" in message
    assert "Traceback" not in message


def test_bad_provider_line_refuses_to_start(tmp_path):
    conf = tmp_path / "isthmus.conf"
    conf.write_text(f"[DEFAULT]\nstate_path = {tmp_path}\ntransport_url = fake://\n\n"
                    "[service_providers]\nservice_provider = VPN:a:ipsec\n"
                    "service_provider = VPN:b:ipsec\n")
    subprocess.run([ISTHMUS, "db", "upgrade", "--config-file", str(conf)], check=True,
                   capture_output=True)
    result = subprocess.run([ISTHMUS, "server", "--config-file", str(conf)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "no default provider" in result.stderr and str(conf) in result.stderr


def test_up_says_the_noop_driver_only_simulates(tmp_path, run):
    proc = run("up", "--data-dir", str(tmp_path / "data"), "--port", str(free_port()))
    for line in proc.stdout:
        if line.startswith("Isthmus "):
            break
    assert "noop device driver: statuses are simulated, no tunnels are built" in line
