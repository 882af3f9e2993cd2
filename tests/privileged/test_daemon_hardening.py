"""Attacks on the daemon itself, each reproduced against a real daemon (docs/privileged.md,
"Defences and their tests").

- Swapping a directory on the way to an executable, a config or a filter
  file after the daemon checked it.
- Holding the daemon hostage: commands outliving their caller, no timeout,
  one uid taking every connection.
- Forging audit lines with control characters in arguments.
- Non-ASCII digits in integer options.

The attackers are real unprivileged users (`nobody`, and `daemon` as a
second, innocent caller) in child processes; a marker file written by a
command proves whether the attacker's code ran as root.
"""

from __future__ import annotations

import json
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import textwrap
from pathlib import Path
from typing import Iterator

import pytest

from isthmus.privileged import (
    Client,
    CommandTimeout,
    ConfigError,
    ExecutableNotFound,
    load_config,
    load_filters,
    protocol,
)
from isthmus.privileged.audit import audit_line
from isthmus.privileged.server import MAX_CONNECTIONS, ROOT_RESERVED_CONNECTIONS

from .conftest import (
    SYSTEM_EXEC_DIRS,
    DaemonProcess,
    RootwrapSetup,
    make_world_readable_dir,
    python_as_user,
    require_root,
    run_as_nobody,
    start_daemon,
    wait_for,
)

NOBODY = 65534
DAEMON_USER = 1  # Debian's `daemon`: a second real unprivileged uid


@pytest.fixture
def user_owned_dir() -> Iterator[Path]:
    """A directory owned by nobody: nobody may rename what is inside it and put their own in its place."""
    require_root()
    root = make_world_readable_dir("isthmus-user-owned-")
    os.chown(root, NOBODY, NOBODY)
    try:
        yield Path(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def swap_as_nobody(directory: Path) -> None:
    """As nobody: move `directory` away and put a directory with `tool -> /bin/sh` in its place."""
    code = textwrap.dedent(f"""
        os.rename({str(directory)!r}, {str(directory) + '-moved-away'!r})
        os.mkdir({str(directory)!r})
        os.symlink("/bin/sh", {str(directory / 'tool')!r})
    """)
    result = run_as_nobody(code)
    assert result.returncode == 0, result.stderr


def trusted_tool_dir(parent: Path) -> Path:
    """`parent/bin` with a root-owned `tool` that only prints a greeting."""
    bin_dir = parent / "bin"
    bin_dir.mkdir(mode=0o755)
    tool = bin_dir / "tool"
    tool.write_text("#!/bin/sh\necho trusted tool\n")
    tool.chmod(0o755)
    return bin_dir


# -- 3. Directories swapped after the check ------------------------------------------

def test_exec_dir_in_user_owned_parent_swapped_after_start_runs_nothing(rootwrap: RootwrapSetup, user_owned_dir):
    # The reported attack: an exec dir whose parent the agent user owns.
    bin_dir = trusted_tool_dir(user_owned_dir)
    marker = rootwrap.root / "pwned"
    rootwrap.write_filters("[Filters]\ntool: CommandFilter, tool, root\n", name="tool.filters")
    rootwrap.write_config(exec_dirs=f"{bin_dir},{SYSTEM_EXEC_DIRS}")
    daemon = start_daemon(rootwrap)
    try:
        swap_as_nobody(bin_dir)
        with Client(daemon.socket_path, autostart=False) as client:
            with pytest.raises(ExecutableNotFound):
                client.execute(["tool", "-c", f"id -u > {marker}"])
        assert not marker.exists(), "the attacker's tool ran as root"
        assert f"exec_dirs: ignoring {bin_dir}" in daemon.log()
    finally:
        daemon.stop()


def test_exec_dir_whose_parent_changes_hands_after_start_is_checked_at_each_run(
    rootwrap: RootwrapSetup, user_owned_dir
):
    # Trusted when the daemon started (root owned every directory), then the
    # parent is handed to the agent user: the check at start is stale.
    os.chown(user_owned_dir, 0, 0)
    bin_dir = trusted_tool_dir(user_owned_dir)
    marker = rootwrap.root / "pwned"
    rootwrap.write_filters("[Filters]\ntool: CommandFilter, tool, root\n", name="tool.filters")
    rootwrap.write_config(exec_dirs=f"{bin_dir},{SYSTEM_EXEC_DIRS}")
    daemon = start_daemon(rootwrap)
    try:
        with Client(daemon.socket_path, autostart=False) as client:
            assert client.execute(["tool"]).stdout == b"trusted tool\n"
            os.chown(user_owned_dir, NOBODY, NOBODY)
            swap_as_nobody(bin_dir)
            with pytest.raises(ExecutableNotFound, match="owned by uid 65534"):
                client.execute(["tool", "-c", f"id -u > {marker}"])
            assert client.execute(["echo", "still", "serving"]).stdout == b"still serving\n"
        assert not marker.exists(), "the attacker's tool ran as root"
    finally:
        daemon.stop()


def test_filter_with_absolute_path_in_user_owned_parent_runs_nothing(rootwrap: RootwrapSetup, user_owned_dir):
    bin_dir = trusted_tool_dir(user_owned_dir)
    marker = rootwrap.root / "pwned"
    rootwrap.write_filters(f"[Filters]\ntool: CommandFilter, {bin_dir / 'tool'}, root\n", name="tool.filters")
    daemon = start_daemon(rootwrap)
    try:
        swap_as_nobody(bin_dir)
        with Client(daemon.socket_path, autostart=False) as client:
            with pytest.raises(ExecutableNotFound, match="on the way to"):
                client.execute([str(bin_dir / "tool"), "-c", f"id -u > {marker}"])
        assert not marker.exists(), "the attacker's tool ran as root"
    finally:
        daemon.stop()


def test_chained_inner_command_in_user_owned_parent_runs_nothing(
    rootwrap: RootwrapSetup, user_owned_dir, netns_names
):
    # `ip netns exec NS CMD`: ip itself is fine, the inner command's path is not.
    bin_dir = trusted_tool_dir(user_owned_dir)
    marker = rootwrap.root / "pwned"
    rootwrap.write_filters(f"[Filters]\ntool: CommandFilter, {bin_dir / 'tool'}, root\n", name="tool.filters")
    daemon = start_daemon(rootwrap)
    try:
        with Client(daemon.socket_path, autostart=False) as client:
            client.add_netns(netns_names[0])
            swap_as_nobody(bin_dir)
            with pytest.raises(ExecutableNotFound, match="on the way to"):
                client.execute(["ip", "netns", "exec", netns_names[0], str(bin_dir / "tool"),
                                "-c", f"id -u > {marker}"])
        assert not marker.exists(), "the attacker's tool ran as root"
    finally:
        daemon.stop()


def test_config_file_in_user_owned_directory_is_refused(user_owned_dir):
    config = user_owned_dir / "rootwrap.conf"
    config.write_text("[DEFAULT]\nfilters_path = /nonexistent\n")
    config.chmod(0o644)
    with pytest.raises(ConfigError, match=f"{user_owned_dir} is owned by uid 65534.*on the way to {config}"):
        load_config(str(config))


def test_filter_directory_in_user_owned_directory_is_skipped(user_owned_dir):
    filters_dir = user_owned_dir / "rootwrap.d"
    filters_dir.mkdir(mode=0o755)
    (filters_dir / "evil.filters").write_text("[Filters]\nsmuggled: CommandFilter, bash, root\n")
    (filters_dir / "evil.filters").chmod(0o644)
    loaded = load_filters([str(filters_dir)])
    assert loaded.filters == []
    assert any("owned by uid 65534" in str(problem) for problem in loaded.problems), loaded.problems


def test_filter_file_symlinked_into_user_owned_directory_is_skipped(rootwrap: RootwrapSetup, user_owned_dir):
    elsewhere = user_owned_dir / "real.filters"
    elsewhere.write_text("[Filters]\nsmuggled: CommandFilter, bash, root\n")
    elsewhere.chmod(0o644)
    (rootwrap.filters_dir / "link.filters").symlink_to(elsewhere)
    loaded = load_filters([str(rootwrap.filters_dir)])
    assert "smuggled" not in {f.name for f in loaded.filters}
    assert any("link.filters" in str(problem) for problem in loaded.problems), loaded.problems


def test_reload_rechecks_the_config_file(rootwrap: RootwrapSetup, user_owned_dir):
    # SIGHUP re-reads rootwrap.conf with the same checks: a config moved into
    # a user-owned place is refused and the daemon keeps what it had.
    daemon = start_daemon(rootwrap)
    try:
        moved = user_owned_dir / "rootwrap.conf"
        shutil.move(rootwrap.config_path, moved)
        os.symlink(moved, rootwrap.config_path)
        daemon.process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "reload refused" in daemon.log()), daemon.log()
        with Client(daemon.socket_path, autostart=False) as client:
            assert client.execute(["echo", "ok"]).stdout == b"ok\n"
    finally:
        daemon.stop()


# -- 4. Holding the daemon hostage ---------------------------------------------------------

def marker_seconds() -> str:
    """A `sleep` duration no other test uses, to find exactly our commands in /proc."""
    return str(random.randrange(10**8, 10**9))


def pids_of_sleep(seconds: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if len(argv) >= 2 and argv[0].endswith(b"sleep") and argv[1] == seconds.encode():
                pids.append(int(entry))
    return pids


@pytest.fixture
def sleep_marker() -> Iterator[str]:
    """A unique sleep duration; any such sleep still alive afterwards is killed (the unfixed daemon leaves them)."""
    seconds = marker_seconds()
    try:
        yield seconds
    finally:
        for pid in pids_of_sleep(seconds):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def raw_exec(path: str, argv: list[str], timeout_ms: int = 0) -> socket.socket:
    """A connection that has sent one EXEC request and not read the reply."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(60)  # hang guard only
    conn.connect(path)
    assert protocol.FrameReader(conn, 65536).read_message().status == protocol.Status.OK
    conn.sendall(protocol.encode(protocol.ExecRequest(1, argv, None, timeout_ms)))
    return conn


def test_command_is_killed_when_its_client_disconnects(daemon: DaemonProcess, sleep_marker):
    conn = raw_exec(daemon.socket_path, ["sleep", sleep_marker])
    assert wait_for(lambda: len(pids_of_sleep(sleep_marker)) == 1)
    conn.close()
    assert wait_for(lambda: not pids_of_sleep(sleep_marker)), "the command outlived its caller"
    assert wait_for(lambda: any("verdict=client-gone" in line for line in daemon.audit_lines()))


def test_default_timeout_applies_when_the_caller_gives_none(rootwrap: RootwrapSetup, sleep_marker):
    rootwrap.write_config(daemon_command_timeout="1", daemon_command_timeout_max="2")
    daemon = start_daemon(rootwrap)
    try:
        conn = raw_exec(daemon.socket_path, ["sleep", sleep_marker], timeout_ms=0)
        reply = protocol.FrameReader(conn, protocol.MAX_REPLY_BYTES).read_message()
        conn.close()
        assert reply.status == protocol.Status.TIMEOUT and reply.message == "killed after 1 s", reply
        with Client(daemon.socket_path, autostart=False) as client, pytest.raises(CommandTimeout):
            client.execute(["sleep", sleep_marker])
    finally:
        daemon.stop()


def test_timeout_above_the_maximum_is_cut_to_the_maximum(rootwrap: RootwrapSetup, sleep_marker):
    rootwrap.write_config(daemon_command_timeout="1", daemon_command_timeout_max="2")
    daemon = start_daemon(rootwrap)
    try:
        conn = raw_exec(daemon.socket_path, ["sleep", sleep_marker], timeout_ms=10**9)
        reply = protocol.FrameReader(conn, protocol.MAX_REPLY_BYTES).read_message()
        conn.close()
        assert reply.status == protocol.Status.TIMEOUT and reply.message == "killed after 2 s", reply
    finally:
        daemon.stop()


@pytest.mark.parametrize("options, message", [
    ({"daemon_command_timeout": "0"}, "expected a positive integer"),
    ({"daemon_command_timeout_max": "-1"}, "expected a positive integer"),
    ({"daemon_command_timeout": "100", "daemon_command_timeout_max": "10"}, "above daemon_command_timeout_max"),
    ({"daemon_max_commands_per_user": "0"}, "expected a positive integer"),
])
def test_unlimited_or_inconsistent_limits_are_config_errors(rootwrap: RootwrapSetup, options, message):
    with pytest.raises(ConfigError, match=message):
        load_config(rootwrap.write_config(**options))


# The attacker opens `count` connections, starts `sleep SECONDS` on each one
# it got, and reports what happened as JSON; it holds everything open until
# its stdin closes. It waits for each request to either start (its sleep
# shows in /proc) or be refused before sending the next, so the counts do
# not depend on timing.
FLOODER = textwrap.dedent("""
    from isthmus.privileged import protocol
    path, seconds, count, run_commands = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "run"

    def sleeps():
        found = 0
        for entry in os.listdir("/proc"):
            try:
                argv = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\\0")
            except OSError:
                continue
            found += len(argv) >= 2 and argv[0].endswith(b"sleep") and argv[1] == seconds.encode()
        return found

    report = {"accepted": 0, "refused": {}, "running": 0, "request_refused": {}}
    held = []
    for _ in range(count):
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        status = protocol.FrameReader(s, 65536).read_message().status.name
        if status == "OK":
            held.append(s)
        else:
            report["refused"][status] = report["refused"].get(status, 0) + 1
            s.close()
    report["accepted"] = len(held)
    for s in held if run_commands else ():
        s.sendall(protocol.encode(protocol.ExecRequest(1, ["sleep", seconds])))
        while True:
            if select.select([s], [], [], 0.01)[0]:
                status = protocol.FrameReader(s, protocol.MAX_REPLY_BYTES).read_message().status.name
                report["request_refused"][status] = report["request_refused"].get(status, 0) + 1
                break
            if sleeps() > report["running"]:
                report["running"] += 1
                break
    print(json.dumps(report), flush=True)
    sys.stdin.read()
""")


class Flooder:
    """A `nobody` process holding connections (and commands) open until `release()`."""

    def __init__(self, socket_path: str, seconds: str, count: int, run_commands: bool) -> None:
        argv = python_as_user(NOBODY, NOBODY, FLOODER) + [
            socket_path, seconds, str(count), "run" if run_commands else "hold"]
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, cwd="/", env={"PATH": "/usr/bin:/bin"})

    def report(self) -> dict:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 120)  # hang guard only
        assert ready, "the flooding process did not report"
        line = self.process.stdout.readline()
        assert line, self.process.stderr.read().decode() if self.process.stderr else ""
        return json.loads(line)

    def release(self) -> None:
        """Disconnect everything at once, as a caller that dies would."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def run_as_daemon_user(socket_path: str) -> str:
    code = textwrap.dedent(f"""
        from isthmus.privileged import Client
        print(Client({socket_path!r}, autostart=False).execute(["id", "-u"]).stdout.decode().strip())
    """)
    result = subprocess.run(python_as_user(DAEMON_USER, DAEMON_USER, code), capture_output=True, text=True,
                            timeout=60, cwd="/", env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_one_uid_flooding_long_commands_blocks_neither_another_uid_nor_root(
    rootwrap: RootwrapSetup, sleep_marker
):
    # The reported attack: 256 long-running commands, then disconnect.
    rootwrap.write_config(daemon_allowed_users="nobody,daemon", daemon_max_connections_per_user="8",
                          daemon_max_commands_per_user="4")
    daemon = start_daemon(rootwrap)
    flooder = Flooder(daemon.socket_path, sleep_marker, MAX_CONNECTIONS, run_commands=True)
    try:
        report = flooder.report()
        assert report == {"accepted": 8, "refused": {"OVER_LIMIT": MAX_CONNECTIONS - 8},
                          "running": 4, "request_refused": {"OVER_LIMIT": 4}}, report
        with Client(daemon.socket_path, autostart=False) as client:
            assert client.execute(["echo", "root", "gets", "in"]).stdout == b"root gets in\n"
        assert run_as_daemon_user(daemon.socket_path) == "0"
        assert len(pids_of_sleep(sleep_marker)) == 4

        flooder.release()
        assert wait_for(lambda: not pids_of_sleep(sleep_marker)), "commands outlived their caller"
        over_limit = [line for line in daemon.audit_lines() if "uid=65534" in line and "verdict=over-limit" in line]
        assert len(over_limit) == MAX_CONNECTIONS - 8 + 4
    finally:
        flooder.release()
        daemon.stop()


def test_root_keeps_its_reserve_when_other_callers_take_every_other_connection(rootwrap: RootwrapSetup):
    rootwrap.write_config(daemon_allowed_users="nobody", daemon_max_connections_per_user=str(MAX_CONNECTIONS))
    daemon = start_daemon(rootwrap)
    flooder = Flooder(daemon.socket_path, "1", MAX_CONNECTIONS, run_commands=False)
    try:
        report = flooder.report()
        assert report["accepted"] == MAX_CONNECTIONS - ROOT_RESERVED_CONNECTIONS, report
        assert report["refused"] == {"BUSY": ROOT_RESERVED_CONNECTIONS}, report
        with Client(daemon.socket_path, autostart=False) as client:
            assert client.execute(["echo", "root", "gets", "in"]).stdout == b"root gets in\n"
    finally:
        flooder.release()
        daemon.stop()


def test_caller_over_its_limit_gets_a_clear_error(rootwrap: RootwrapSetup):
    rootwrap.write_config(daemon_allowed_users="nobody", daemon_max_connections_per_user="1")
    daemon = start_daemon(rootwrap)
    try:
        code = textwrap.dedent(f"""
            from isthmus.privileged import CallerLimitExceeded
            held = socket.socket(socket.AF_UNIX)
            held.connect({daemon.socket_path!r})
            held.recv(4096)  # the HELLO: this connection counts now
            try:
                Client({daemon.socket_path!r}, autostart=False).execute(["true"])
            except CallerLimitExceeded as exc:
                print("LIMIT", exc)
        """)
        result = run_as_nobody(code)
        assert "LIMIT uid 65534 already has 1 connections open" in result.stdout, result.stdout + result.stderr
        assert "daemon_max_connections_per_user" in result.stdout
    finally:
        daemon.stop()


# -- 9. Forged audit lines -------------------------------------------------------------------

FORGED = "2026-01-01 00:00:00,000 isthmus.privileged.audit INFO uid=0 pid=1 verdict=allowed filter=sh exit=0 cmd=sh"


@pytest.mark.parametrize("separator", ["\n", "\r\n", "\u2028", "\x85", "\x0b"])
def test_line_break_in_an_argument_cannot_forge_an_audit_line(daemon: DaemonProcess, separator):
    with Client(daemon.socket_path, autostart=False) as client:
        client.execute(["echo", "x" + separator + FORGED])
    lines = daemon.log().splitlines()  # splitlines breaks on every separator above
    assert not any(line.startswith(FORGED) for line in lines), lines
    assert len([line for line in lines if "verdict=allowed" in line and "echo" in line]) == 1


def test_audit_escapes_are_unambiguous():
    def cmd(*argv: str) -> str:
        return audit_line(uid=0, pid=1, argv=["echo", *argv], verdict="allowed").split(" cmd=", 1)[1]

    assert cmd("a\nb") == "echo 'a\\nb'"
    assert cmd("a\\nb") == "echo 'a\\\\nb'"  # a real backslash never reads as an escape
    assert cmd("\u2028", "\x1b[2J", "\udcff") == "echo '\\u2028' '\\x1b[2J' '\\udcff'"
    assert cmd("héllo") == "echo 'héllo'"  # printable text stays readable


# -- 6. Integers are ASCII -------------------------------------------------------------------

def test_non_ascii_digits_are_not_integers(rootwrap: RootwrapSetup):
    with pytest.raises(ConfigError, match="expected an integer"):
        load_config(rootwrap.write_config(daemon_timeout="\u0663"))  # ARABIC-INDIC DIGIT THREE
    with pytest.raises(ConfigError, match="expected an integer"):
        load_config(rootwrap.write_config(daemon_timeout="1_000"))


def test_superscript_digit_as_a_user_is_an_unknown_name_not_a_crash(rootwrap: RootwrapSetup):
    rootwrap.write_config(daemon_timeout="120")
    config = load_config(rootwrap.write_config(daemon_allowed_users="\u00b2"))
    assert config.daemon_allowed_uids == frozenset()
    assert any("no such user '\u00b2'" in warning for warning in config.warnings), config.warnings

