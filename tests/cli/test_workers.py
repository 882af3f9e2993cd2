"""``isthmus server --workers N`` as operators run it: real processes, real signals.

Two workers serve one port; a worker killed with -9 is replaced; SIGTERM stops
them all and the parent exits 0; a worker that cannot start stops the server
(exit 1). Two servers of two workers each on one database run the dead-agent
watch in exactly one process of the four, counted from the logs (each line
carries its process id), and when that server stops another process takes over.
Whichever worker answers ``/metrics`` counts the requests of both.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.cli.test_commands import ISTHMUS, free_port, wait_for
from tests.cli.test_shutdown import exit_code, wait_until

WATCH_RUN = re.compile(r"^\S+ \S+ (\d+) DEBUG isthmus\.periodic: Running dead-agent-watch$",
                       re.M)


def children(pid: int) -> set[int]:
    """The worker processes of the server ``pid``."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return set()
    return {int(p) for p in text.split()}


class Server:
    """``isthmus server`` on a shared SQLite file, its output in a log file."""

    def __init__(self, tmp: Path, name: str, *args: str, extra: str = "") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"{name}.log"
        conf = tmp / f"{name}.conf"
        conf.write_text(f"[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {self.port}\n"
                        f"state_path = {tmp}\nhost = {name}\ntransport_url = fake://\n"
                        f"graceful_shutdown_timeout = 5\n{extra}")
        subprocess.run([ISTHMUS, "db", "upgrade", "--config-file", str(conf)], check=True,
                       capture_output=True)
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen([ISTHMUS, "server", "--config-file", str(conf), *args],
                                         stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        """Everything the server and its workers logged so far."""
        return self.log.read_text()

    def watch_runs(self) -> list[int]:
        """The process ids of the dead-agent watch's rounds, in order."""
        return [int(pid) for pid in WATCH_RUN.findall(self.output())]

    def stop(self) -> int:
        """SIGTERM, then the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        return exit_code(self.proc)


@pytest.fixture
def servers():
    started: list[Server] = []
    yield started
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()
        for pid in children(server.proc.pid):
            os.kill(pid, signal.SIGKILL)


def test_two_workers_share_the_port_a_dead_one_is_replaced_sigterm_stops_all(tmp_path,
                                                                              servers):
    server = Server(tmp_path, "s", "--workers", "2")
    servers.append(server)
    wait_for(f"{server.url}/", server.proc)
    wait_until(lambda: server.output().count("API listening") == 2, "two workers serving")
    first = children(server.proc.pid)
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(children(server.proc.pid) - first) == 1, "a new worker")
    wait_until(lambda: server.output().count("API listening") == 3, "the new worker serving")
    assert "was killed by SIGKILL; starting a new one" in server.output()
    workers = children(server.proc.pid)
    assert victim not in workers and len(workers) == 2
    for _ in range(20):   # whichever worker accepts, every request is answered
        # On SQLite the first request after a kill -9 may wait many seconds for the
        # database (docs/deployment.md): a bound, not a timing.
        assert httpx.get(f"{server.url}/v2.0/vpn/ikepolicies", timeout=120).status_code == 200
    assert server.stop() == 0, server.output()
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or \
            "zombie" in Path(f"/proc/{pid}/status").read_text(), f"worker {pid} left running"
    assert "SIGTERM received: stopping 2 workers" in server.output()


def test_a_worker_that_cannot_start_stops_the_server_with_status_1(tmp_path, servers):
    server = Server(tmp_path, "s", "--workers", "2", extra=(
        "[service_providers]\nservice_provider = VPN:bad:no_such_module.Driver:default\n"))
    servers.append(server)
    assert exit_code(server.proc) == 1, server.output()
    assert "before it served; stopping the server" in server.output()
    assert "no_such_module" in server.output()


def test_two_servers_of_two_workers_run_the_watch_in_one_process(tmp_path, servers):
    extra = "debug = true\nagent_down_time = 3\nleader_lease_time = 9\n"
    one = Server(tmp_path, "one", "--workers", "2", extra=extra)
    servers.append(one)
    wait_for(f"{one.url}/", one.proc)
    two = Server(tmp_path, "two", "--workers", "2", extra=extra)
    servers.append(two)
    wait_for(f"{two.url}/", two.proc)
    wait_until(lambda: len(children(two.proc.pid)) == 2, "both workers of the second server")
    # The watch runs every second: count the processes that ran it over several rounds.
    first = wait_until_runs(lambda: one.watch_runs() + two.watch_runs(), 4)
    assert len(set(first)) == 1, f"the watch ran in several processes: {first}"
    leader = first[0]
    leading, other = (one, two) if leader in children(one.proc.pid) else (two, one)
    assert leader in children(leading.proc.pid)

    # The leader's server stops: a worker of the other takes the lease over.
    assert leading.stop() == 0, leading.output()
    taken = wait_until_runs(other.watch_runs, 3)
    assert len(set(taken)) == 1 and taken[0] in children(other.proc.pid), taken
    assert all(pid == leader for pid in leading.watch_runs())


def wait_until_runs(runs, count: int) -> list[int]:
    """``runs()`` once it lists at least ``count`` rounds."""
    found: list[list[int]] = []
    wait_until(lambda: len(found.append(runs()) or found[-1]) >= count,
               f"{count} rounds of the dead-agent watch")
    return found[-1]


ACCESS = re.compile(r"^\S+ \S+ (\d+) INFO isthmus\.api: GET /v2\.0/vpn/ikepolicies 200 ", re.M)
COUNTED = re.compile(r'^isthmus_api_requests_total\{code="200",method="GET",'
                     r'route="/v2\.0/vpn/ikepolicies"\} (\S+)$', re.M)


def test_metrics_of_two_workers_are_summed_whichever_answers(tmp_path, servers):
    server = Server(tmp_path, "s", "--workers", "2")
    servers.append(server)
    wait_for(f"{server.url}/", server.proc)
    wait_until(lambda: server.output().count("API listening") == 2, "two workers serving")
    requests = 60
    for _ in range(requests):   # a connection each: the kernel spreads them over both
        with httpx.Client() as client:
            assert client.get(f"{server.url}/v2.0/vpn/ikepolicies").status_code == 200
    served_by = {int(pid) for pid in ACCESS.findall(server.output())}
    assert served_by == children(server.proc.pid), "both workers must have served some"
    shared = {metrics_dir(pid) for pid in served_by}
    assert len(shared) == 1 and None not in shared, shared
    for _ in range(10):   # each scrape is answered by one worker or the other
        with httpx.Client() as client:
            text = client.get(f"{server.url}/metrics").text
        assert [float(v) for v in COUNTED.findall(text)] == [requests], text
        assert "isthmus_vpn_objects" in text and "isthmus_agents" in text
    assert server.stop() == 0, server.output()
    assert not shared.pop().exists(), "the metrics directory is removed at the end"


def metrics_dir(pid: int) -> Path | None:
    """The directory where the worker ``pid`` keeps its metrics (prometheus_client's
    ``counter_<pid>.db``), if any."""
    return next((path.parent for path in Path(tempfile.gettempdir()).glob(
        f"isthmus-metrics-*/counter_{pid}.db")), None)
