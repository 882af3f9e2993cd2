"""oslo.rootwrap's documented filter semantics, ported as tests of our filters.

Each test names the oslo.rootwrap behaviour it checks. Where Isthmus is
deliberately stricter, the test says so and checks the stricter rule.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from isthmus.privileged.exceptions import ExecutableNotFound, FilterDefinitionError, NotAllowed
from isthmus.privileged.filters import (
    ChainingFilter,
    ChainingRegExpFilter,
    CommandFilter,
    EnvFilter,
    IpFilter,
    IpNetnsExecFilter,
    KillFilter,
    PathFilter,
    ReadFileFilter,
    RegExpFilter,
    match_command,
    resolve_executable,
)
from tests.privileged.filter_checks import allows

EXEC_DIRS = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]


def named(name: str, filt):
    filt.name = name
    return filt


# -- CommandFilter -----------------------------------------------------------

def test_command_filter_matches_name_with_any_arguments():
    filt = CommandFilter("/usr/bin/foo", "root")
    assert allows(filt, ["foo"])
    assert allows(filt, ["foo", "--anything", "goes", "$(id)"])


def test_command_filter_rejects_other_name_and_empty_argv():
    filt = CommandFilter("/usr/bin/foo", "root")
    assert not allows(filt, ["bar"])
    assert not allows(filt, [])


def test_command_filter_accepts_exact_absolute_path():
    assert allows(CommandFilter("/usr/bin/foo", "root"), ["/usr/bin/foo"])


def test_command_filter_refuses_bogus_full_path():
    # oslo functional test "bogus full path refused (99)"
    assert not allows(CommandFilter("/usr/bin/foo", "root"), ["/tmp/foo"])
    assert not allows(CommandFilter("foo", "root"), ["/usr/bin/foo"])


def test_command_filter_runs_resolved_exec_path_not_callers_argv0():
    cmd = match_command([CommandFilter("true", "root")], ["true", "x"], EXEC_DIRS).command
    assert os.path.isabs(cmd[0]) and os.path.basename(cmd[0]) == "true"
    assert cmd[1:] == ["x"]


# -- RegExpFilter ------------------------------------------------------------

def test_regexp_filter_matches_each_argument():
    filt = RegExpFilter("/bin/sleep", "root", "sleep", r"\d+")
    assert allows(filt, ["sleep", "10"])
    assert not allows(filt, ["sleep", "ten"])
    assert not allows(filt, ["sleep", "10", "20"])
    assert not allows(filt, ["sleep"])
    assert not allows(filt, [])


def test_regexp_filter_first_pattern_is_matched_against_command_name():
    # re0 is compared with argv[0]; exec_path is what runs.
    filt = RegExpFilter("/bin/true", "root", "tr.*", "x")
    assert allows(filt, ["trick", "x"])
    assert match_command([filt], ["trick", "x"], EXEC_DIRS).command == ["/bin/true", "x"]


def test_regexp_filter_without_patterns_matches_nothing():
    filt = RegExpFilter("/bin/true", "root")
    assert not allows(filt, ["true"])
    assert not allows(filt, [])


def test_regexp_filter_invalid_regex_is_a_definition_error():
    filt = RegExpFilter("/bin/true", "root", "true", "(")
    with pytest.raises(FilterDefinitionError, match="invalid regular expression"):
        filt.validate()
    assert not allows(filt, ["true", "("])  # lazily: a broken pattern never matches


def test_first_matching_filter_wins_and_missing_executables_are_skipped():
    # oslo "test_skips": non-matching filters and a matching one whose
    # executable is missing are passed over; a later match wins.
    filters = [
        named("nomatch", RegExpFilter("/bin/true", "root", "other")),
        named("missing", RegExpFilter("/nonexistent/cat", "root", "cat", "x")),
        named("good", RegExpFilter("/bin/cat", "root", "cat", "x")),
    ]
    match = match_command(filters, ["cat", "x"], EXEC_DIRS)
    assert match.filter_name == "good"
    assert match.command == ["/bin/cat", "x"]


def test_missing_executable_raises_executable_not_found():
    filters = [named("gone", CommandFilter("/nonexistent/tool", "root"))]
    with pytest.raises(ExecutableNotFound) as info:
        match_command(filters, ["tool"], EXEC_DIRS)
    assert info.value.exit_code == 96
    assert info.value.filter_name == "gone"


def test_unknown_command_raises_not_allowed():
    with pytest.raises(NotAllowed) as info:
        match_command([CommandFilter("true", "root")], ["false"], EXEC_DIRS)
    assert info.value.exit_code == 99


# -- exec_dirs ---------------------------------------------------------------

def test_exec_dirs_are_searched_in_order(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for directory in (first, second):
        directory.mkdir()
        tool = directory / "tool"
        tool.write_text("#!/bin/sh\n")
        tool.chmod(0o755)
    os.chmod(tmp_path, 0o755)
    resolved, _ = resolve_executable("tool", [str(second), str(first)])
    assert resolved == str(second / "tool")


def test_relative_path_with_directory_is_never_resolved():
    resolved, reason = resolve_executable("bin/true", ["/usr", "/"])
    assert resolved is None and "neither absolute" in reason


# -- PathFilter --------------------------------------------------------------

@pytest.fixture
def tree(tmp_path):
    inside = tmp_path / "allowed"
    inside.mkdir()
    (inside / "file").write_text("x")
    outside = tmp_path / "other"
    outside.mkdir()
    (outside / "file").write_text("x")
    (inside / "link-in").symlink_to(inside / "file")
    (inside / "link-out").symlink_to(outside / "file")
    return inside, outside


def test_path_filter_pass_and_equality(tree):
    inside, _ = tree
    filt = PathFilter("/bin/chown", "root", "nova", str(inside), "pass")
    assert allows(filt, ["chown", "nova", str(inside / "file"), "anything"])
    assert not allows(filt, ["chown", "root", str(inside / "file"), "anything"])


def test_path_filter_wrong_argument_count_or_command(tree):
    inside, _ = tree
    filt = PathFilter("/bin/chown", "root", "nova", str(inside))
    assert not allows(filt, ["chown", "nova"])
    assert not allows(filt, ["chown", "nova", str(inside / "file"), "extra"])
    assert not allows(filt, ["chmod", "nova", str(inside / "file")])
    assert not allows(filt, ["chown"])


def test_path_filter_inside_outside_traversal_and_symlinks(tree):
    inside, outside = tree
    filt = PathFilter("/bin/chown", "root", "nova", str(inside))
    assert allows(filt, ["chown", "nova", str(inside / "file")])
    assert allows(filt, ["chown", "nova", str(inside / "link-in")])
    assert not allows(filt, ["chown", "nova", str(outside / "file")])
    assert not allows(filt, ["chown", "nova", str(inside / ".." / "other" / "file")])
    assert not allows(filt, ["chown", "nova", str(inside / "link-out")])


def test_path_filter_get_command_uses_canonical_paths(tree):
    inside, _ = tree
    filt = PathFilter("/bin/chown", "root", "nova", str(inside))
    command = match_command([filt], ["chown", "nova", str(inside / "link-in")], EXEC_DIRS).command
    assert command == ["/bin/chown", "nova", os.path.realpath(inside / "file")]


# -- KillFilter --------------------------------------------------------------

@pytest.fixture
def sleeper():
    process = subprocess.Popen(["/usr/bin/sleep", "30"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def test_kill_filter_signals(sleeper):
    pid = str(sleeper.pid)
    filt = KillFilter("root", "/usr/bin/sleep", "-9", "-HUP")
    assert allows(filt, ["kill", "-9", pid])
    assert allows(filt, ["kill", "-HUP", pid])
    assert not allows(filt, ["kill", "-15", pid])  # signal not listed
    assert not allows(filt, ["kill", pid])  # filter requires a signal
    assert allows(KillFilter("root", "/usr/bin/sleep"), ["kill", pid])
    assert not allows(KillFilter("root", "/usr/bin/sleep"), ["kill", "-9", pid])


def test_kill_filter_wrong_program_own_pid_and_missing_pid(sleeper):
    filt = KillFilter("root", "/usr/bin/cat", "-9")
    assert not allows(filt, ["kill", "-9", str(sleeper.pid)])
    assert not allows(KillFilter("root", "/usr/bin/sleep", "-9"), ["kill", "-9", str(os.getpid())])
    assert not allows(KillFilter("root", "/usr/bin/sleep", "-9"), ["kill", "-9", "999999999"])


def test_kill_filter_rejects_non_kill_and_non_pid(sleeper):
    filt = KillFilter("root", "/usr/bin/sleep", "-9")
    assert not allows(filt, ["pkill", "-9", str(sleeper.pid)])
    assert not allows(filt, ["kill", "-9", "sleep"])
    assert not allows(filt, ["kill", "-9", "-1"])
    assert not allows(filt, ["kill", "-9", "0"])
    assert not allows(filt, ["kill"])


def test_kill_filter_relative_target_must_be_in_exec_dirs(sleeper):
    # oslo looks in its PATH; Isthmus in exec_dirs (the trusted list).
    filt = KillFilter("root", "sleep", "-9")
    real_dir = os.path.dirname(os.readlink(f"/proc/{sleeper.pid}/exe"))
    assert allows(filt, ["kill", "-9", str(sleeper.pid)], [real_dir])
    assert not allows(filt, ["kill", "-9", str(sleeper.pid)], ["/opt/elsewhere"])
    assert not allows(filt, ["kill", "-9", str(sleeper.pid)], [])


def test_kill_filter_deleted_executable_still_matches(tmp_path):
    # An upgraded binary shows as "PATH (deleted)" in /proc/PID/exe.
    copy = tmp_path / "sleepy"
    copy.write_bytes(open("/usr/bin/sleep", "rb").read())
    copy.chmod(0o755)
    process = subprocess.Popen([str(copy), "30"])
    try:
        copy.unlink()
        assert allows(KillFilter("root", str(copy), "-9"), ["kill", "-9", str(process.pid)])
    finally:
        process.kill()
        process.wait()


# -- ReadFileFilter ----------------------------------------------------------

def test_read_file_filter_exact_path_only():
    filt = ReadFileFilter("/etc/hostname")
    assert allows(filt, ["cat", "/etc/hostname"])
    assert not allows(filt, ["cat", "/etc/passwd"])
    assert not allows(filt, ["cat", "/etc/hostname", "/etc/shadow"])
    assert not allows(filt, ["more", "/etc/hostname"])
    assert match_command([filt], ["cat", "/etc/hostname"], EXEC_DIRS).command == ["/bin/cat", "/etc/hostname"]


# -- IpFilter ----------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["ip", "link", "list"],
    ["ip", "-s", "link", "show"],
    ["ip", "addr", "add", "10.0.0.1/24", "dev", "eth0"],
    ["ip", "netns", "add", "foo"],
    ["ip", "netns", "delete", "foo"],
    ["ip", "netns", "list"],
    ["ip", "link", "set", "eth0", "netns", "foo"],
])
def test_ip_filter_allows_non_exec_commands(argv):
    assert allows(IpFilter("ip", "root"), argv)


@pytest.mark.parametrize("argv", [
    ["ip", "netns", "exec", "foo", "ip", "link"],
    ["ip", "net", "e", "foo", "ip", "link"],
    ["ip", "netn", "ex", "foo", "ip", "link"],
    ["ip", "-s", "netns", "exe", "foo", "ip", "link"],
    ["ip", "-all", "netns", "exec", "ip", "link"],
])
def test_ip_filter_refuses_netns_exec_including_abbreviations(argv):
    assert not allows(IpFilter("ip", "root"), argv)


def test_ip_filter_needs_plain_ip_command_name():
    assert not allows(IpFilter("ip", "root"), ["/usr/sbin/ip", "link"])
    assert not allows(IpFilter("ip", "root"), ["ipx", "link"])


# -- IpNetnsExecFilter -------------------------------------------------------

def test_ip_netns_exec_filter_shapes():
    filt = IpNetnsExecFilter("ip", "root")
    assert allows(filt, ["ip", "netns", "exec", "foo", "ip", "link", "list"])
    assert allows(filt, ["ip", "net", "e", "foo", "ip", "link"])
    assert not allows(filt, ["ip", "link", "list"])
    assert not allows(filt, ["ip", "netns", "exec", "foo"])  # no inner command
    assert not allows(IpNetnsExecFilter("ip", "nobody"), ["ip", "netns", "exec", "foo", "ip", "a"])
    assert filt.split(["ip", "netns", "exec", "foo", "ip", "link"])[1] == ["ip", "link"]


def test_ip_netns_exec_inner_command_must_match_a_leaf_filter():
    filters = [named("ip", IpFilter("ip", "root")), named("ip_exec", IpNetnsExecFilter("ip", "root"))]
    match = match_command(filters, ["ip", "netns", "exec", "foo", "ip", "link"], EXEC_DIRS)
    assert match.filter_name == "ip_exec > ip"
    assert match.command[1:4] == ["netns", "exec", "foo"]
    assert os.path.isabs(match.command[4]) and match.command[5:] == ["link"]
    with pytest.raises(NotAllowed):
        match_command(filters, ["ip", "netns", "exec", "foo", "cat", "/etc/shadow"], EXEC_DIRS)


def test_ip_netns_exec_cannot_reach_a_filter_of_another_user():
    filters = [
        named("cat_nobody", CommandFilter("cat", "nobody")),
        named("ip_exec", IpNetnsExecFilter("ip", "root")),
    ]
    with pytest.raises(NotAllowed):
        match_command(filters, ["ip", "netns", "exec", "foo", "cat", "x"], EXEC_DIRS)


def test_ip_netns_exec_cannot_nest():
    filters = [named("ip", IpFilter("ip", "root")), named("ip_exec", IpNetnsExecFilter("ip", "root"))]
    argv = ["ip", "netns", "exec", "foo", "ip", "netns", "exec", "bar", "ip", "link"]
    with pytest.raises(NotAllowed):
        match_command(filters, argv, EXEC_DIRS)


def test_chaining_filter_base_never_matches():
    assert not allows(ChainingFilter("/bin/true", "root"), ["true"])
    with pytest.raises(NotAllowed):
        match_command([ChainingFilter("/bin/true", "root")], ["true", "x"], EXEC_DIRS)


# -- ChainingRegExpFilter ----------------------------------------------------

def test_chaining_regexp_filter_prefix_then_inner_command():
    filters = [
        named("nice", ChainingRegExpFilter("nice", "root", "nice", r"-?\d+")),
        named("cat", CommandFilter("cat", "root")),
    ]
    match = match_command(filters, ["nice", "5", "cat", "/etc/hostname"], EXEC_DIRS)
    assert match.command[1] == "5" and match.command[3:] == ["/etc/hostname"]
    with pytest.raises(NotAllowed):
        match_command(filters, ["nice", "five", "cat", "x"], EXEC_DIRS)
    with pytest.raises(NotAllowed):
        match_command(filters, ["nice", "5", "rm", "x"], EXEC_DIRS)
    with pytest.raises(NotAllowed):
        match_command(filters, ["nice", "5"], EXEC_DIRS)


def test_chaining_regexp_filters_with_different_prefix_lengths():
    filters = [
        named("ionice", ChainingRegExpFilter("ionice", "root", "ionice", "-c[0-3]")),
        named("ionice2", ChainingRegExpFilter("ionice", "root", "ionice", "-c[0-3]", "-n[0-7]")),
        named("cat", CommandFilter("cat", "root")),
    ]
    assert match_command(filters, ["ionice", "-c2", "cat", "x"], EXEC_DIRS).filter_name == "ionice > cat"
    assert match_command(filters, ["ionice", "-c2", "-n7", "cat", "x"], EXEC_DIRS).filter_name == "ionice2 > cat"


# -- EnvFilter ---------------------------------------------------------------

def test_env_filter_with_and_without_leading_env():
    filt = EnvFilter("env", "root", "A=", "B=", "sleep")
    for argv in (["env", "A=1", "B=2", "sleep", "5"], ["A=1", "B=2", "sleep", "5"]):
        original = list(argv)
        assert allows(filt, argv)
        assert argv == original  # Isthmus: the caller's argv is never mutated


def test_env_filter_variable_set_must_match_exactly():
    filt = EnvFilter("env", "root", "A=", "B=", "sleep")
    assert not allows(filt, ["env", "A=1", "sleep"])
    assert not allows(filt, ["env", "A=1", "B=2", "C=3", "sleep"])
    assert not allows(filt, ["env", "sleep"])


def test_env_filter_command_must_match():
    filt = EnvFilter("env", "root", "A=", "sleep")
    assert not allows(filt, ["env", "A=1", "cat"])
    assert not allows(filt, ["env", "A=1"])


def test_env_filter_runs_command_with_variables_not_env():
    filt = EnvFilter("env", "root", "A=", "B=", "sleep")
    argv = ["env", "A=foo", "B=", "sleep", "1"]
    command = match_command([filt], argv, EXEC_DIRS).command
    assert os.path.basename(command[0]) == "sleep" and command[1:] == ["1"]
    # Empty values are not passed (oslo.rootwrap behaviour).
    assert filt.plan(argv).env == {"A": "foo"}


def test_env_filter_dnsmasq_style():
    filt = EnvFilter("env", "root", "CONFIG_FILE=", "NETWORK_ID=", "dnsmasq")
    argv = ["env", "CONFIG_FILE=/etc/x", "NETWORK_ID=42", "dnsmasq", "--foo"]
    assert allows(filt, argv)
    assert filt.plan(argv).env == {"CONFIG_FILE": "/etc/x", "NETWORK_ID": "42"}


def test_env_filter_words_after_command_are_checked():
    # oslo ignores "-f, .*" in neutron's haproxy_env; Isthmus checks them.
    filt = EnvFilter("env", "root", "PROCESS_TAG=", "haproxy", "-f", ".*")
    assert allows(filt, ["env", "PROCESS_TAG=x", "haproxy", "-f", "/etc/h.cfg"])
    assert not allows(filt, ["env", "PROCESS_TAG=x", "haproxy", "-d", "/etc/h.cfg"])
    assert not allows(filt, ["env", "PROCESS_TAG=x", "haproxy", "-f", "/etc/h.cfg", "-x"])


def test_env_filter_run_by_match_command_passes_variables():
    filters = [named("sleep_env", EnvFilter("env", "root", "A=", "sleep"))]
    match = match_command(filters, ["env", "A=1", "sleep", "1"], EXEC_DIRS)
    assert match.env == {"A": "1"}
    assert os.path.basename(match.command[0]) == "sleep"


# -- run_as ------------------------------------------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
def test_run_as_switches_uid_gid_and_groups():
    # oslo.rootwrap only calls setuid (gid 0 and root's groups stay).
    from isthmus.privileged.execution import child_environment, run

    match = match_command([named("id", CommandFilter("id", "nobody"))], ["id"], EXEC_DIRS)
    outcome = run(match, child_environment(EXEC_DIRS))
    assert outcome.returncode == 0
    text = outcome.stdout.decode()
    assert "uid=65534" in text and "gid=0(" not in text and "groups=0(" not in text
    assert "(root)" not in text, text


def test_filter_classes_are_the_oslo_names_plus_ip_object_filter():
    from isthmus.privileged.filters import FILTER_CLASSES

    assert set(FILTER_CLASSES) == {
        "CommandFilter", "RegExpFilter", "PathFilter", "KillFilter", "ReadFileFilter",
        "IpFilter", "EnvFilter", "ChainingFilter", "IpNetnsExecFilter", "ChainingRegExpFilter",
        "IpObjectFilter",  # Isthmus's allow-list class for ip (docs/privileged.md)
    }


def test_module_imports_without_re_until_a_regex_is_used():
    code = (
        "import sys; import isthmus.privileged.filters as f; "
        "f.CommandFilter('true','root').plan(['true']); print('re' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-S", "-c", f"import sys; sys.path[:0]={sys.path!r}; {code}"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_literal_patterns_match_exactly_without_regex():
    from isthmus.privileged.filters import FilterPattern

    literal = FilterPattern("sleep")
    assert literal.fullmatch("sleep") and not literal.fullmatch("sleep ") and not literal.fullmatch("sleepy")
    assert literal._compiled is None  # never compiled
    assert FilterPattern("a.b").fullmatch("a.b") and not FilterPattern("a.b").fullmatch("a-b")
