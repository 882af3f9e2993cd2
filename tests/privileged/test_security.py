"""The bypass corpus: every attempt must be refused, and the daemon must keep serving.

Most attempts are checked twice: against the filter engine (fast, precise
reason) and through a real daemon (what an attacker would actually do).
A marker file proves an attacker's payload did not run as root.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from isthmus.privileged import Client, ExecutableNotFound, NotAllowed
from isthmus.privileged.filterfile import build_filter
from isthmus.privileged.filters import match_command
from isthmus.privileged.exceptions import FilterDefinitionError

from .conftest import (
    DaemonProcess,
    RootwrapSetup,
    make_world_readable_dir,
    require_root,
    run_as_nobody,
)

DIRS = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]


def filters(*lines: str):
    built = []
    for line in lines:
        name, definition = line.split(":", 1)
        built.append(build_filter(name.strip(), definition))
    return built


def refused(filter_list, argv, exec_dirs=DIRS) -> bool:
    try:
        match_command(filter_list, argv, exec_dirs)
    except (NotAllowed, ExecutableNotFound):
        return True
    return False


@pytest.fixture
def attacker_dir():
    """A directory owned by nobody holding an executable `ip` that leaves a marker."""
    require_root()
    root = make_world_readable_dir("isthmus-attacker-")
    marker = Path(root) / "pwned"
    evil = Path(root) / "ip"
    evil.write_text(f"#!/bin/sh\nid > {marker}\n")
    evil.chmod(0o755)
    os.chown(root, 65534, 65534)
    os.chown(evil, 65534, 65534)
    try:
        yield Path(root), marker
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def client(shared_daemon: DaemonProcess):
    with Client(shared_daemon.socket_path, autostart=False) as c:
        yield c


def assert_daemon_still_serves(client: Client) -> None:
    assert client.execute(["echo", "still", "here"]).stdout == b"still here\n"


# -- 1. Chaining filters: the inner command is matched and resolved itself -----

NEUTRON_IP = ("ip: IpFilter, ip, root", "ip_exec: IpNetnsExecFilter, ip, root")


def test_netns_exec_with_attacker_owned_inner_path_is_refused(attacker_dir):
    root, _ = attacker_dir
    assert refused(filters(*NEUTRON_IP), ["ip", "netns", "exec", "ns1", str(root / "ip"), "link"])


def test_netns_exec_with_attacker_owned_inner_path_through_daemon(client, attacker_dir, netns_names):
    root, marker = attacker_dir
    client.add_netns(netns_names[0])
    with pytest.raises(NotAllowed):
        client.execute(["ip", "netns", "exec", netns_names[0], str(root / "ip"), "link"])
    assert not marker.exists()
    # The legitimate form runs the *resolved* ip inside the namespace.
    out = client.execute(["ip", "netns", "exec", netns_names[0], "ip", "-o", "link"]).stdout
    assert b"lo:" in out
    assert_daemon_still_serves(client)


def test_chaining_regexp_inner_path_is_not_reduced_to_basename(attacker_dir):
    root, _ = attacker_dir
    chain = filters("nice: ChainingRegExpFilter, nice, root, nice, -?[0-9]+", "ip: IpFilter, ip, root")
    assert refused(chain, ["nice", "5", str(root / "ip"), "link"])
    match = match_command(chain, ["nice", "5", "ip", "link"], DIRS)
    assert match.command[2] in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip")


# -- 2. ip batch mode smuggling netns exec on stdin ------------------------------

@pytest.mark.parametrize("argv", [
    ["ip", "-force", "-batch", "-"],
    ["ip", "-batch", "-"],
    ["ip", "-b", "-"],
    ["ip", "-ba", "/tmp/cmds"],
    ["ip", "--batch", "-"],
    ["ip", "-n", "foo", "-batch", "-"],
    ["ip", "-force", "link"],
    ["ip", "-s", "-b", "/dev/stdin"],
])
def test_ip_batch_mode_is_refused(argv):
    assert refused(filters(*NEUTRON_IP), argv)


def test_ip_batch_through_daemon_runs_nothing(client, attacker_dir, netns_names):
    _, marker = attacker_dir
    payload = f"netns exec {netns_names[0]} /bin/sh -c 'id > {marker}'\n".encode()
    with pytest.raises(NotAllowed):
        client.execute(["ip", "-force", "-batch", "-"], stdin=payload)
    assert not marker.exists()
    assert_daemon_still_serves(client)


def test_netns_exec_hidden_behind_option_argument_is_refused():
    # oslo only looks at the first netns token: `-n netns` hid the real one.
    assert refused(filters(*NEUTRON_IP), ["ip", "-n", "netns", "netns", "exec", "x", "sh"])
    assert refused(filters("ip: IpFilter, ip, root"), ["ip", "-all", "netns", "exec", "sh"])


def test_netns_exec_namespace_name_cannot_be_a_path():
    ip = filters(*NEUTRON_IP)
    for name in ("../../proc/1/ns/net", ".", "..", "-x", "a/b"):
        assert refused(ip, ["ip", "netns", "exec", name, "ip", "link"]), name


# -- 3. PathFilter prefix confusion ----------------------------------------------

def test_path_filter_sibling_prefix_is_not_inside(tmp_path):
    base = tmp_path / "x"
    sibling = tmp_path / "x-other"
    base.mkdir()
    sibling.mkdir()
    (sibling / "f").write_text("")
    chown = filters(f"chown: PathFilter, chown, root, root, {base}")
    assert refused(chown, ["chown", "root", str(sibling / "f")])
    assert refused(chown, ["chown", "root", str(sibling)])
    assert not refused(chown, ["chown", "root", str(base)])


def test_path_filter_refuses_relative_and_dotdot_values(tmp_path):
    base = tmp_path / "x"
    base.mkdir()
    chown = filters(f"chown: PathFilter, chown, root, root, {base}")
    assert refused(chown, ["chown", "root", "relative/file"])
    assert refused(chown, ["chown", "root", f"{base}/../../etc/shadow"])


def test_path_filter_symlink_out_of_the_directory(tmp_path):
    base = tmp_path / "x"
    base.mkdir()
    (base / "escape").symlink_to("/etc/shadow")
    chown = filters(f"chown: PathFilter, chown, root, root, {base}")
    assert refused(chown, ["chown", "root", str(base / "escape")])


# -- 4. RegExpFilter: dots, alternation, anchoring ---------------------------------

def test_unescaped_dot_is_a_literal_dot():
    cp = filters("cp: RegExpFilter, cp, root, cp, -a, .*, .*/strongswan.d")
    assert refused(cp, ["cp", "-a", "/tmp/evil", "/etc/cron.d/strongswan_d"])
    assert not refused(cp, ["cp", "-a", "/var/lib/x/src", "/var/lib/x/etc/strongswan.d"])


def test_dotstar_does_not_accept_parent_directory_components():
    cp = filters("cp: RegExpFilter, cp, root, cp, -a, .*, .*/strongswan.d")
    assert refused(cp, ["cp", "-a", "/tmp/evil", "/var/lib/x/../../../etc/strongswan.d"])
    assert refused(cp, ["cp", "-a", "../../etc/shadow", "/var/lib/x/strongswan.d"])


def test_alternation_is_anchored_on_every_branch():
    rm = filters(r"rm: RegExpFilter, rm, root, rm, -f, /var/run/a\.pid|/var/run/b\.pid")
    assert refused(rm, ["rm", "-f", "/var/run/a.pid/../../../etc/shadow"])
    assert refused(rm, ["rm", "-f", "/var/run/a.pidX"])
    assert not refused(rm, ["rm", "-f", "/var/run/b.pid"])


@pytest.mark.parametrize("value", ["10\n", "10\nrm", " 10", "10 ", "1 0", "x10", "10x"])
def test_regex_anchoring_tricks(value):
    assert refused(filters(r"sleep: RegExpFilter, sleep, root, sleep, \d+"), ["sleep", value])


def test_argument_count_mismatch_is_refused(tmp_path):
    sleep = filters(r"sleep: RegExpFilter, sleep, root, sleep, \d+")
    assert refused(sleep, ["sleep"])
    assert refused(sleep, ["sleep", "1", "2"])
    chown = filters(f"chown: PathFilter, chown, root, root, {tmp_path}")
    assert refused(chown, ["chown", "root"])
    assert refused(chown, ["chown", "root", str(tmp_path), "/etc/shadow"])


# -- 5. Shell metacharacters: arguments are never interpreted -----------------------

@pytest.mark.parametrize("argument", ["$(id)", "`id`", "a; id", "a && id", "a | id", "> /etc/x", "$HOME", "*"])
def test_shell_metacharacters_are_literal(client, argument):
    assert client.execute(["echo", argument]).stdout == argument.encode() + b"\n"


def test_shell_metacharacters_do_not_satisfy_patterns():
    sleep = filters(r"sleep: RegExpFilter, sleep, root, sleep, \d+")
    for value in ("1;id", "1$(id)", "1`id`", "1|id", "1 && id"):
        assert refused(sleep, ["sleep", value])


# -- 6. exec_dirs: ../, absolute paths, relative paths --------------------------------

def test_absolute_path_to_other_binary_does_not_match(client):
    with pytest.raises(NotAllowed):
        client.execute(["/tmp/../usr/bin/id"])
    with pytest.raises(NotAllowed):
        client.execute(["/usr/bin/../bin/true"])
    assert_daemon_still_serves(client)


def test_relative_and_dotdot_exec_paths_never_resolve(tmp_path):
    for exec_path in ("../bin/true", "bin/true", "./true", "/usr/bin/../bin/true"):
        assert refused(filters(f"t: CommandFilter, {exec_path}, root"), [exec_path]), exec_path


def test_callers_argv0_is_never_what_runs(rootwrap: RootwrapSetup, attacker_dir):
    # A filter for `ip` with the caller naming their own `ip` file: no match,
    # and a bare `ip` resolves through exec_dirs only.
    root, marker = attacker_dir
    ip = filters("ip: IpFilter, ip, root")
    assert refused(ip, [str(root / "ip"), "link"])
    assert refused(ip, ["./ip", "link"])
    # Even with the attacker's directory in exec_dirs, an untrusted file is refused.
    assert refused(ip, ["ip", "link"], [str(root)])
    assert not marker.exists()


# -- 7. Symlinked executables -----------------------------------------------------

def test_symlink_in_exec_dirs_to_untrusted_file_is_refused(rootwrap: RootwrapSetup, attacker_dir):
    root, _ = attacker_dir
    (rootwrap.bin_dir / "tool").symlink_to(root / "ip")
    assert refused(filters("tool: CommandFilter, tool, root"), ["tool"], [str(rootwrap.bin_dir)])


def test_symlink_in_exec_dirs_to_trusted_file_is_allowed(rootwrap: RootwrapSetup):
    (rootwrap.bin_dir / "mytrue").symlink_to("/usr/bin/true")
    match = match_command(filters("t: CommandFilter, mytrue, root"), ["mytrue"], [str(rootwrap.bin_dir)])
    assert match.command == [str(rootwrap.bin_dir / "mytrue")]


def test_caller_symlink_named_like_allowed_command_is_refused(attacker_dir):
    root, _ = attacker_dir
    link = root / "true"
    link.symlink_to("/usr/bin/true")
    assert refused(filters("t: CommandFilter, /usr/bin/true, root"), [str(link)])


# -- 8. Environment injection -----------------------------------------------------------

@pytest.mark.parametrize("name", ["PATH", "LD_PRELOAD", "LD_LIBRARY_PATH", "PYTHONPATH", "PYTHONSTARTUP",
                                  "BASH_ENV", "IFS", "GLIBC_TUNABLES"])
def test_envfilter_cannot_be_defined_for_dangerous_variables(name):
    with pytest.raises(FilterDefinitionError, match=name):
        build_filter("x", f"EnvFilter, env, root, {name}=, dnsmasq")


def test_envfilter_refuses_extra_variables_from_the_caller():
    env = filters("dnsmasq_env: EnvFilter, env, root, PROCESS_TAG=, dnsmasq")
    assert refused(env, ["env", "LD_PRELOAD=/tmp/x.so", "dnsmasq"])
    assert refused(env, ["env", "PROCESS_TAG=x", "LD_PRELOAD=/tmp/x.so", "dnsmasq"])
    assert refused(env, ["env", "PATH=/tmp", "dnsmasq"])


def test_env_prefix_does_not_unlock_other_filters():
    # oslo popped a leading `env` from the shared argv: `env ip a` ran `ip a`.
    ip_env = filters("ip: IpFilter, ip, root", "e: EnvFilter, env, root, A=, dnsmasq")
    assert refused(ip_env, ["env", "ip", "a"])


def test_daemon_children_get_a_clean_environment(client):
    out = client.execute(["env"]).stdout.decode()
    names = {line.split("=", 1)[0] for line in out.splitlines()}
    assert names == {"PATH", "LANG"}


# -- 9. KillFilter against the wrong process ----------------------------------------------

def test_kill_filter_refuses_a_process_that_is_not_the_allowed_program(client):
    victim = subprocess.Popen(["/usr/bin/cat"], stdin=subprocess.PIPE)
    allowed = subprocess.Popen(["/usr/bin/sleep", "30"])
    try:
        with pytest.raises(NotAllowed):
            client.execute(["kill", "-9", str(victim.pid)])
        assert victim.poll() is None
        with pytest.raises(NotAllowed):
            client.execute(["kill", "-1", str(allowed.pid)])  # signal not in the list
        with pytest.raises(NotAllowed):
            client.execute(["kill", "-9", "-1"])  # "every process"
        client.execute(["kill", "-9", str(allowed.pid)])
        assert allowed.wait(5) == -9
    finally:
        for process in (victim, allowed):
            process.kill()
            process.wait()


# -- 10. A caller whose uid is not allowed ------------------------------------------------

def test_unauthorized_uid_is_refused_and_daemon_keeps_serving(daemon: DaemonProcess):
    # `daemon` allows no one but root; nobody connects from a child process.
    code = textwrap.dedent(f"""
        from isthmus.privileged import Client, PeerNotAuthorized
        try:
            Client({daemon.socket_path!r}, autostart=False).execute(["true"])
        except PeerNotAuthorized as exc:
            print("REFUSED", exc)
        else:
            print("RAN")
    """)
    result = run_as_nobody(code)
    assert "REFUSED uid 65534" in result.stdout, result.stdout + result.stderr
    assert any("connection-refused" in line and "uid=65534" in line for line in daemon.audit_lines())
    with Client(daemon.socket_path, autostart=False) as client:
        assert_daemon_still_serves(client)


def test_uid_allowed_through_its_group_can_run(shared_daemon: DaemonProcess):
    # shared_daemon has daemon_allowed_groups = nogroup.
    code = textwrap.dedent(f"""
        from isthmus.privileged import Client
        print(Client({shared_daemon.socket_path!r}, autostart=False).execute(["id", "-u"]).stdout.decode().strip())
    """)
    result = run_as_nobody(code)
    assert result.stdout.strip() == "0", result.stderr  # the command runs as root


def test_unauthorized_raw_connection_gets_a_refusal_frame(daemon: DaemonProcess):
    from isthmus.privileged import protocol

    code = textwrap.dedent(f"""
        import socket
        from isthmus.privileged import protocol
        s = socket.socket(socket.AF_UNIX)
        s.connect({daemon.socket_path!r})
        print(protocol.FrameReader(s, 65536).read_message().status.name)
        print(repr(s.recv(10)))
    """)
    result = run_as_nobody(code)
    assert result.stdout.split() == ["UNAUTHORIZED", "b''"], result.stderr
    assert protocol.Status.UNAUTHORIZED.name == "UNAUTHORIZED"


# -- 11. Truncated, garbage and huge frames ---------------------------------------------------

def raw_connection(path: str) -> socket.socket:
    from isthmus.privileged import protocol

    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(10)
    conn.connect(path)
    hello = protocol.FrameReader(conn, 65536).read_message()
    assert hello.status == protocol.Status.OK
    return conn


@pytest.mark.parametrize("frame", [
    b"\x00\x00\x00\x10garbage-garbage!",                 # valid length, garbage payload
    b"\x00\x00\x00\x02\x01\x02",                         # too short for an EXEC body
    b"\x00\x00\x00\x01\x01",                             # shorter than any header
    b"\x00\x00\x00\x06\x09\x02\x00\x00\x00\x00",         # unknown version
    b"\x00\x00\x00\x06\x01\x63\x00\x00\x00\x00",         # unknown kind
    b"\x00\x00\x00\x0e\x01\x02" + b"\x00" * 8 + b"\x00\xff\xff\xff",  # argc over the limit / truncated
    struct.pack("!I", 0x7FFFFFFF),                       # huge length, refused unread
    struct.pack("!I", 9 * 1024 * 1024) + b"x" * 1024,    # over the request limit
])
def test_malformed_frames_are_answered_and_daemon_keeps_serving(client, shared_daemon, frame):
    from isthmus.privileged import protocol

    conn = raw_connection(shared_daemon.socket_path)
    try:
        conn.sendall(frame)
        reply = protocol.FrameReader(conn, protocol.MAX_REPLY_BYTES).read_message()
        assert isinstance(reply, protocol.Reply) and reply.status == protocol.Status.BAD_REQUEST
        try:  # the daemon drops that connection only (a reset if bytes were left unread)
            assert conn.recv(10) == b""
        except ConnectionResetError:
            pass
    finally:
        conn.close()
    assert_daemon_still_serves(client)


def test_truncated_frame_then_vanishing_client(client, shared_daemon):
    conn = raw_connection(shared_daemon.socket_path)
    conn.sendall(struct.pack("!I", 1000) + b"\x01\x02partial")
    conn.close()
    assert_daemon_still_serves(client)


def test_client_vanishing_mid_command(client, shared_daemon):
    from isthmus.privileged import protocol

    conn = raw_connection(shared_daemon.socket_path)
    conn.sendall(protocol.encode(protocol.ExecRequest(1, ["sleep", "0.3"])))
    conn.close()  # gone before the reply
    time.sleep(0.5)
    assert_daemon_still_serves(client)


def test_many_bad_connections_do_not_exhaust_the_daemon(client, shared_daemon):
    for _ in range(50):
        conn = raw_connection(shared_daemon.socket_path)
        conn.sendall(b"\xff\xff\xff\xff")
        conn.close()
    assert_daemon_still_serves(client)


def test_nul_bytes_in_arguments_are_a_clean_refusal(client):
    with pytest.raises(NotAllowed):
        client.execute(["echo", "a\0b"])
    assert_daemon_still_serves(client)


def test_refusal_is_clean_and_next_call_is_served(client):
    # oslo.rootwrap's daemon crashed the call and respawned on the next one.
    with pytest.raises(NotAllowed) as info:
        client.execute(["rm", "-rf", "/"])
    assert info.value.exit_code == 99
    assert_daemon_still_serves(client)
