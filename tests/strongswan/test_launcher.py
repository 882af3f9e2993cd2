"""``isthmus-charon`` trusts nothing the agent writes: real charons, the real privileged helper.

The agent user could write the router directory it named to the launcher
(``isthmus-charon start DIR NETNS``): a ``charon.start-scripts`` entry in its
strongswan.conf ran as root, a ``charon.log`` symlink made root append to (and
echo back) a root-only file, and a forged pid file chose whom ``stop`` killed.
The first tests replay those attacks as the agent can (through the shipped
filters, both the argument forms allowed before and the ones allowed now); the
others check the root side's own defences directly.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path
from typing import Callable, Iterator, Sequence

import pytest

from isthmus.demo import privileged
from isthmus.drivers.device.strongswan import launcher
from isthmus.drivers.device.strongswan.charon import Charon
from isthmus.privileged import Client, NotAllowed
from isthmus.privileged.filterfile import load_filters

CHARON = "/usr/lib/ipsec/charon"
LAUNCHER = [sys.executable, "-m", "isthmus.drivers.device.strongswan.launcher"]

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(CHARON),
                                reason="needs root and strongSwan's charon")


def run_launcher(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*LAUNCHER, *args], capture_output=True, text=True, timeout=60)


def charon_pids_in(netns: str) -> list[int]:
    found = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()
            if os.path.exists(f"/proc/{p}/exe") and os.readlink(f"/proc/{p}/exe") == CHARON]


@pytest.fixture
def make_netns() -> Iterator[Callable[[], str]]:
    """Fresh network namespaces; their processes are killed and they are removed afterwards."""
    made: list[str] = []

    def make() -> str:
        name = f"isml{uuid.uuid4().hex[:8]}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        made.append(name)
        return name

    yield make
    for name in made:
        found = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
        for pid in found.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", name])


@pytest.fixture
def router_ids() -> Iterator[list[str]]:
    """Router ids a test uses; their root-side directories and lock files go afterwards."""
    ids: list[str] = []
    yield ids
    for router_id in ids:
        shutil.rmtree(f"{launcher.RUN_DIR}/{router_id}", ignore_errors=True)
        Path(f"{launcher.RUN_DIR}/{router_id}.lock").unlink(missing_ok=True)


def new_router(router_ids: list[str]) -> str:
    router_ids.append(str(uuid.uuid4()))
    return router_ids[-1]


@pytest.fixture
def agent() -> Iterator[tuple[Path, Client]]:
    """The agent's state_path and a client of the privileged helper with the shipped filters."""
    state = Path(tempfile.mkdtemp(prefix="ism-", dir="/tmp"))
    conf = privileged.write_config(state)
    client = Client(config_path=str(conf))
    try:
        yield state, client
    finally:
        client.close()
        privileged.stop_daemon(conf)
        shutil.rmtree(state, ignore_errors=True)


def attempt(client: Client, argvs: Sequence[list[str]]) -> list[object]:
    """Run each argv through the helper as the agent would: its result, or "refused"."""
    outcomes: list[object] = []
    for argv in argvs:
        try:
            outcomes.append(client.execute(argv, timeout=40, check=False))
        except NotAllowed:
            outcomes.append("refused")
    return outcomes


def agent_written_conf(router_dir: Path, body: str) -> None:
    """What the agent could put in the directory it used to name to the launcher."""
    (router_dir / "etc").mkdir(parents=True)
    (router_dir / "run").mkdir()
    (router_dir / "etc" / "strongswan.conf").write_text(textwrap.dedent(body))


def test_agent_written_start_script_never_runs(agent, make_netns, router_ids):
    state, client = agent
    netns, router_id = make_netns(), new_router(router_ids)
    own_dir = state / "strongswan" / router_id
    marker = state / "ran-as-root"
    agent_written_conf(own_dir, f"""\
        charon {{
          load_modular = no
          load = random nonce openssl pem pkcs1 x509 pubkey socket-default kernel-netlink vici
          start-scripts {{
            pwn = /usr/bin/touch {marker}
          }}
          plugins {{
            vici {{
              socket = unix://{own_dir}/run/charon.vici
            }}
          }}
        }}
        """)
    started = attempt(client, [
        ["isthmus-charon", "start", str(own_dir), netns],   # the form allowed before
        ["isthmus-charon", "start", router_id, "--netns", netns, "--vici-owner", "root"]])
    # Stopping lets a start-script finish: charon handles SIGTERM only after running them.
    attempt(client, [["isthmus-charon", "stop", str(own_dir)],
                     ["isthmus-charon", "stop", router_id]])
    assert not marker.exists(), "an agent-written charon.start-scripts entry ran as root"
    assert started[0] == "refused"
    assert started[1].returncode == 0, started[1].stderr_text
    assert started[1].stdout_text.strip() == launcher.vici_socket(router_id)


def test_agent_planted_log_symlink_is_neither_appended_nor_echoed(agent, make_netns,
                                                                   router_ids, tmp_path):
    state, client = agent
    netns, router_id = make_netns(), new_router(router_ids)
    secret = tmp_path / "root-only"   # pytest's tmp_path is 0700 root
    secret.write_text(f"root-only-{uuid.uuid4().hex}\n")
    own_dir = state / "strongswan" / router_id
    # No VICI plugin: charon never answers, and the launcher used to print its log's tail.
    agent_written_conf(own_dir, "charon {\n  load_modular = no\n  load = random nonce\n}\n")
    (own_dir / "charon.log").symlink_to(secret)
    started = attempt(client, [
        ["isthmus-charon", "start", str(own_dir), netns],   # the form allowed before
        ["isthmus-charon", "start", router_id, "--netns", netns, "--vici-owner", "root"]])
    attempt(client, [["isthmus-charon", "stop", str(own_dir)],
                     ["isthmus-charon", "stop", router_id]])
    content = secret.read_text()
    assert content.count("\n") == 1, f"root appended charon's output to {secret}: {content!r}"
    for outcome in started:
        if outcome != "refused":
            assert content.strip() not in outcome.stdout_text + outcome.stderr_text
    assert started[0] == "refused"


def test_forged_pid_file_cannot_make_stop_kill_another_charon(agent, make_netns, router_ids):
    state, client = agent
    victim = Charon(str(state / "strongswan"), new_router(router_ids), make_netns(), False,
                    lambda argv: client.execute(argv, timeout=40))
    victim.ensure_running()
    [victim_pid] = charon_pids_in(victim.namespace)
    attacker_id = new_router(router_ids)
    own_dir = state / "strongswan" / attacker_id
    (own_dir / "run").mkdir(parents=True)
    (own_dir / "run" / "charon.pid").write_text(f"{victim_pid}\n")
    attempt(client, [["isthmus-charon", "stop", str(own_dir)],   # the form allowed before
                     ["isthmus-charon", "stop", attacker_id]])
    assert victim.running(), "stop of the agent's router killed another router's charon"
    assert charon_pids_in(victim.namespace) == [victim_pid]
    victim.stop_and_remove()
    assert charon_pids_in(victim.namespace) == []


def test_filters_let_the_agent_name_only_a_router_a_namespace_and_its_own_user(agent):
    _, client = agent
    router_id = str(uuid.uuid4())
    refused = [
        ["isthmus-charon", "start", router_id.upper(), "--vici-owner", "root"],
        ["isthmus-charon", "start", f"../{router_id}", "--vici-owner", "root"],
        ["isthmus-charon", "start", router_id, "--vici-owner", "nobody"],
        ["isthmus-charon", "start", router_id, "--netns", "../x", "--vici-owner", "root"],
        ["isthmus-charon", "start", router_id, "--vici-owner", "root", "--libipsec"],
        ["isthmus-charon", "start", router_id],
        ["isthmus-charon", "stop", f"/tmp/{router_id}"],
    ]
    assert attempt(client, refused) == ["refused"] * len(refused)


def test_the_shipped_filters_allow_every_command_the_agent_sends():
    filters = load_filters([str(privileged.FILTERS)]).filters
    router_id = str(uuid.uuid4())
    for netns in (None, "ns-1"):
        for libipsec in (False, True):
            charon = Charon("/nonexistent", router_id, netns, libipsec, lambda argv: None)
            argv = charon.start_command()
            assert any(f.plan(argv) for f in filters), argv
    assert any(f.plan(["isthmus-charon", "stop", router_id]) for f in filters)


def test_launcher_refuses_a_router_id_that_is_not_a_canonical_uuid():
    for bad in (str(uuid.uuid4()).upper(), "../../etc", "x" * 36):
        for command in (["start", bad, "--vici-owner", "root"], ["stop", bad]):
            result = run_launcher(*command)
            assert result.returncode == 2
            assert "not a canonical UUID" in result.stderr


def test_router_directory_not_root_only_is_refused(make_netns, router_ids):
    netns, router_id = make_netns(), new_router(router_ids)
    path = Path(launcher.router_dir(router_id))
    path.mkdir(parents=True)
    nobody = pwd.getpwnam("nobody")
    for owner, mode in ((nobody.pw_uid, 0o755), (0, 0o777), (0, 0o775)):
        os.chown(path, owner, -1)
        os.chmod(path, mode)
        for command in (["start", router_id, "--netns", netns, "--vici-owner", "root"],
                        ["stop", router_id]):
            result = run_launcher(*command)
            assert result.returncode == 2, result
            assert f"{path} is owned by uid {owner} with mode {mode:04o}" in result.stderr
            assert "expected a directory owned by root" in result.stderr
            assert os.listdir(path) == [], "nothing is written into a directory others control"
    assert charon_pids_in(netns) == []


@pytest.fixture
def run_tree() -> Iterator[Path]:
    """A directory tree under /run (root-only all the way up, unlike /tmp)."""
    top = Path(tempfile.mkdtemp(prefix="ism-launcher-", dir="/run"))
    os.chmod(top, 0o755)
    yield top
    shutil.rmtree(top)


def test_every_ancestor_must_be_root_only_and_no_symlink(run_tree):
    safe = run_tree / "safe"
    fd = launcher.open_root_dir(f"{safe}/a/b", create=True)
    assert fd is not None
    os.close(fd)
    assert (safe / "a" / "b").stat().st_mode & 0o777 == 0o755
    assert launcher.open_root_dir(f"{safe}/missing", create=False) is None

    writable = run_tree / "writable"
    writable.mkdir()
    os.chmod(writable, 0o777)
    nobodys = run_tree / "nobodys"
    nobodys.mkdir()
    os.chown(nobodys, pwd.getpwnam("nobody").pw_uid, -1)
    link = run_tree / "link"
    link.symlink_to(safe)
    for bad, why in ((writable, "with mode 0777"), (nobodys, "owned by uid 65534"),
                     (link, "is not a plain directory")):
        with pytest.raises(launcher.LauncherError, match=why) as refused:
            launcher.open_root_dir(f"{bad}/charon/router", create=True)
        assert str(bad) in str(refused.value)
    assert os.listdir(writable) == [] and os.listdir(nobodys) == []
    assert os.listdir(safe) == ["a"], "nothing was created through the symlink"


def test_failed_start_echoes_only_the_log_it_created(make_netns, router_ids, tmp_path):
    """A symlink in the router directory (which only root can put there) is not followed either."""
    router_id = new_router(router_ids)
    secret = tmp_path / "root-only"
    secret.write_text(f"root-only-{uuid.uuid4().hex}\n")
    before = secret.read_text()
    fd = launcher.open_root_dir(launcher.router_dir(router_id), create=True)
    assert fd is not None
    os.close(fd)
    log = Path(launcher.router_dir(router_id)) / "charon.log"
    log.symlink_to(secret)
    # A "namespace" that is a plain file: charon cannot enter it and never answers.
    broken = f"isml{uuid.uuid4().hex[:8]}"
    Path(f"/run/netns/{broken}").touch()
    try:
        result = run_launcher("start", router_id, "--netns", broken, "--vici-owner", "root")
    finally:
        os.unlink(f"/run/netns/{broken}")
    assert result.returncode == 1
    assert f"entering network namespace {broken}" in result.stderr, result.stderr
    assert before.strip() not in result.stdout + result.stderr
    assert secret.read_text() == before
    assert not log.is_symlink() and log.stat().st_uid == 0 and log.stat().st_mode & 0o777 == 0o600


def test_stale_pid_file_naming_another_routers_charon_signals_nothing(make_netns, router_ids):
    ids = new_router(router_ids), new_router(router_ids)
    namespaces = make_netns(), make_netns()
    for router_id, netns in zip(ids, namespaces):
        result = run_launcher("start", router_id, "--netns", netns, "--vici-owner", "root")
        assert result.returncode == 0, result.stderr
    [pid_a], [pid_b] = (charon_pids_in(ns) for ns in namespaces)
    Path(launcher.router_dir(ids[0]), "charon.pid").write_text(f"{pid_b}\n")
    assert run_launcher("stop", ids[0]).returncode == 0
    assert charon_pids_in(namespaces[1]) == [pid_b], "stop signalled another router's charon"
    assert not os.path.exists(launcher.router_dir(ids[0]))
    assert run_launcher("stop", ids[1]).returncode == 0
    assert charon_pids_in(namespaces[1]) == []
    assert charon_pids_in(namespaces[0]) == [pid_a]   # its pid file lied: left running


def test_vici_socket_is_handed_to_the_named_user_only(make_netns, router_ids):
    router_id = new_router(router_ids)
    path = launcher.vici_socket(router_id)
    assert len(path.encode()) <= 107, "sun_path holds 107 bytes and a NUL"
    result = run_launcher("start", router_id, "--netns", make_netns(), "--vici-owner", "nobody")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == path
    connect = ["/usr/bin/python3", "-c",
               f"import socket; socket.socket(socket.AF_UNIX).connect({path!r})"]
    as_nobody = subprocess.run(connect, user="nobody", group="nogroup", extra_groups=[],
                               capture_output=True, text=True)
    assert as_nobody.returncode == 0, as_nobody.stderr
    other = subprocess.run(connect, user="daemon", group="daemon", extra_groups=[],
                           capture_output=True, text=True)
    assert "PermissionError" in other.stderr
    # Adopting the running charon hands the socket over again (the agent restarted).
    assert run_launcher("start", router_id, "--vici-owner", "root").returncode == 0
    assert os.stat(path).st_uid == 0
    assert run_launcher("stop", router_id).returncode == 0
