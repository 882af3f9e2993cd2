"""Loading filter files and rootwrap.conf: compatibility and error reporting."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from isthmus.privileged.config import load_config
from isthmus.privileged.exceptions import ConfigError, NotAllowed
from isthmus.privileged.filterfile import load_filter_file, load_filters
from isthmus.privileged.filters import (
    EnvFilter,
    IpFilter,
    IpNetnsExecFilter,
    PathFilter,
    RegExpFilter,
    match_command,
)
from tests.privileged.filter_checks import allows

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.write_text(textwrap.dedent(text))
    path.chmod(mode)
    return path


@pytest.fixture
def filter_dir(tmp_path):
    directory = tmp_path / "rootwrap.d"
    directory.mkdir(mode=0o755)
    return directory


# -- Neutron's and neutron-vpnaas's files load unchanged ----------------------

def test_neutron_filters_load_unchanged():
    filters, problems = load_filter_file(str(FIXTURES / "neutron-rootwrap.filters"))
    assert problems == []
    names = [f.name for f in filters]
    assert names[:4] == ["privsep", "sleep", "ip", "ip_exec"]
    assert len(filters) == 17
    privsep = filters[0]
    # The multi-line continuation entry is joined like RawConfigParser does.
    assert isinstance(privsep, PathFilter)
    assert privsep.args == [
        "--config-file", r"/etc/(?!\.\.).*", "--privsep_context",
        "neutron.privileged.default", "--privsep_sock_path", "/",
    ]
    assert isinstance(filters[2], IpFilter) and isinstance(filters[3], IpNetnsExecFilter)
    haproxy_env = next(f for f in filters if f.name == "haproxy_env")
    assert isinstance(haproxy_env, EnvFilter) and haproxy_env.env_names == {"PROCESS_TAG"}


def test_vpnaas_filters_load_unchanged():
    filters, problems = load_filter_file(str(FIXTURES / "vpnaas.filters"))
    assert problems == []
    assert [f.name for f in filters] == [
        "cp", "ip", "ip_exec", "ipsec", "rm", "rm_file", "strongswan",
        "neutron_netns_wrapper", "neutron_netns_wrapper_local", "chown",
    ]
    rm = next(f for f in filters if f.name == "rm")
    assert isinstance(rm, RegExpFilter)
    assert allows(rm, ["rm", "-rf", "/var/lib/neutron/ipsec/3f2a-77"])
    assert allows(rm, ["rm", "-rf", "/var/lib/neutron/ipsec/x/etc/strongswan.d"])


def test_isthmus_agent_filters_load_and_allow_what_the_agent_needs():
    filter_set = load_filters([str(REPO / "etc" / "isthmus" / "rootwrap.d")])
    assert filter_set.problems == []
    dirs = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    for argv in (["ip", "netns", "list"], ["ip", "netns", "add", "r1"], ["ip", "-n", "r1", "link"],
                 ["ip", "netns", "exec", "r1", "ip", "addr"],
                 ["ip", "netns", "exec", "r1", "sysctl", "-w", "net.ipv4.ip_forward=1"]):
        match_command(filter_set.filters, argv, dirs)


# What the agent, the demo's router building (src/isthmus/demo/sites.py) and the
# daemon's namespace calls run through `ip` today.
AGENT_IP_COMMANDS = [
    ["ip", "netns", "list"], ["ip", "netns", "add", "r1"], ["ip", "netns", "delete", "r1"],
    ["ip", "netns", "del", "r1"], ["ip", "netns", "pids", "r1"],
    ["ip", "-n", "r1", "link", "set", "lo", "up"],
    ["ip", "-n", "r1", "addr", "add", "198.51.100.11/24", "dev", "xwa"],
    # Pinned router writes (every form plan.py makes: tests/agent/routers/test_plan.py).
    ["ip", "link", "add", "link", "eth0", "name", "qg-6c1d2e3f-a1", "address", "fa:16:3e:00:11:22",
     "mtu", "1500", "netns", "isthmus-r1", "type", "macvlan", "mode", "bridge"],
    ["ip", "-n", "r1", "link", "set", "qr-6c1d2e3f-a1", "address", "fa:16:3e:00:11:22", "mtu", "1500", "down"],
    ["ip", "-n", "r1", "link", "delete", "qt-6c1d2e3f-a1"],
    ["ip", "-n", "r1", "route", "add", "0.0.0.0/0", "via", "10.71.0.1", "proto", "77"],
    ["ip", "-n", "r1", "-6", "route", "delete", "::/0", "via", "2001:db8::1", "proto", "77"],
    ["ip", "-n", "r1", "link"], ["ip", "-o", "link"], ["ip", "-n", "r1", "-j", "addr", "show"],
    ["ip", "netns", "exec", "r1", "sysctl", "-w", "net.ipv4.ip_forward=1"],
    ["ip", "netns", "exec", "r1", "ip", "addr"],
    # isthmus.agent.routers: forwarding read/write, SNAT rules.
    ["ip", "netns", "exec", "r1", "sysctl", "-n", "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding",
     "net.ipv4.conf.all.arp_ignore", "net.ipv4.conf.all.arp_announce",
     "net.ipv4.conf.all.arp_notify", "net.ipv6.conf.all.ndisc_notify"],
    ["ip", "netns", "exec", "r1", "sysctl", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
     "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2",
     "net.ipv4.conf.all.arp_notify=1", "net.ipv6.conf.all.ndisc_notify=1"],
    ["ip", "netns", "exec", "r1", "iptables", "-t", "nat", "-S"],
    ["ip", "netns", "exec", "r1", "iptables", "-t", "nat", "-N", "isthmus-snat"],
    ["ip", "netns", "exec", "r1", "iptables", "-t", "nat", "-A", "POSTROUTING", "-j", "isthmus-snat"],
    ["ip", "netns", "exec", "r1", "iptables", "-t", "nat", "-I", "isthmus-snat", "-s", "10.0.0.0/24",
     "-d", "10.1.0.0/16", "-j", "ACCEPT"],
    ["ip", "netns", "exec", "r1", "iptables", "-t", "nat", "-D", "isthmus-snat", "-o", "qg-6c1d2e3f-a1",
     "-j", "SNAT", "--to-source", "198.51.100.2"],
]
OUTSIDE_THE_ALLOW_LIST = [
    ["ip", "vrf", "exec", "default", "/bin/sh"], ["ip", "netns", "exec", "r1", "sh"],
    ["ip", "-all", "netns", "delete"], ["ip", "-b", "-"], ["ip", "xfrm", "state", "flush"],
    ["ip", "rule", "add", "from", "all", "lookup", "7"], ["ip", "link", "xstats", "type", "bridge"],
    ["ip", "netns", "attach", "r1", "1"], ["ip", "address", "restore"], ["ip", "-n", "../x", "link"],
    ["ip", "netns", "exec", "r1", "ip", "vrf", "exec", "default", "sh"],
    # link add|set|delete and route add|delete open and load a BPF object file as root
    # with these words, so those verbs are pinned: free arguments are refused.
    ["ip", "link", "add", "xwa", "netns", "r1", "type", "veth", "peer", "name", "xwb", "netns", "r2"],
    ["ip", "link", "set", "dev", "lo", "xdp", "obj", "/tmp/x.o"],
    ["ip", "-n", "r1", "link", "set", "qg-6c1d2e3f-a1", "up", "xdp", "obj", "/tmp/x.o"],
    ["ip", "link", "add", "link", "eth0", "name", "qg-6c1d2e3f-a1", "address", "fa:16:3e:00:11:22",
     "mtu", "1500", "netns", "/tmp/x", "type", "macvlan", "mode", "bridge"],
    ["ip", "link", "add", "link", "eth0", "name", "qg-6c1d2e3f-a1", "address", "fa:16:3e:00:11:22",
     "mtu", "1500", "netns", "r1", "type", "macvlan", "mode", "bridge", "xdp", "obj", "/tmp/x.o"],
    ["ip", "link", "delete", "dev", "qg-x", "xdp", "obj", "/tmp/x.o"],
    ["ip", "-n", "r1", "link", "delete", "eth0"],
    ["ip", "-n", "r1", "route", "add", "10.0.0.0/8", "encap", "bpf", "in", "obj", "/tmp/x.o", "dev", "lo"],
    ["ip", "-n", "r1", "route", "add", "default", "via", "10.71.0.1"],
    # SNAT rules: only the pinned shapes; nothing that names a program or a file.
    ["iptables-restore", "--noflush"], ["nft", "-f", "-"], ["ip", "netns", "exec", "r1", "iptables", "-t", "nat", "-F"],
    ["ip", "netns", "exec", "r1", "iptables", "-t", "nat", "-A", "isthmus-snat", "-o", "qg-x", "-j", "SNAT",
     "--to-source", "198.51.100.2", "--modprobe=/tmp/x"],
    ["ip", "netns", "exec", "r1", "iptables", "--modprobe=/tmp/x", "-t", "nat", "-S"],
    ["ip", "netns", "exec", "r1", "iptables", "-t", "nat", "-A", "isthmus-snat", "-o", "eth0", "-j", "SNAT",
     "--to-source", "198.51.100.2"],
    ["ip", "netns", "exec", "r1", "iptables", "-t", "nat", "-I", "isthmus-snat", "-s", "/etc/x",
     "-d", "10.1.0.0/16", "-j", "ACCEPT"],
    ["ip", "netns", "exec", "r1", "sysctl", "-p", "/tmp/x"],
    ["ip", "-n", "r1", "link", "set", "lo", "xdp", "obj", "/home/agent/prog.o"],
    ["ip", "route", "add", "10.9.0.0/24", "encap", "bpf", "in", "obj", "/home/agent/prog.o", "dev", "lo"],
    ["ip", "link", "set", "eth0", "netns", "/proc/1/ns/net"],
]


def test_isthmus_agent_filters_are_an_allow_list_of_ip_objects_and_verbs():
    filter_set = load_filters([str(REPO / "etc" / "isthmus" / "rootwrap.d")])
    assert filter_set.problems == []
    dirs = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    for argv in AGENT_IP_COMMANDS:
        match_command(filter_set.filters, argv, dirs)
    for argv in OUTSIDE_THE_ALLOW_LIST:
        with pytest.raises(NotAllowed):
            match_command(filter_set.filters, argv, dirs)


def test_sample_rootwrap_conf_parses():
    config = load_config(str(REPO / "etc" / "isthmus" / "rootwrap.conf"))
    assert config.filters_path == ("/etc/isthmus/rootwrap.d", "/usr/share/isthmus/rootwrap")
    assert config.daemon_socket == "/run/isthmus/rootwrap.sock"
    assert config.daemon_timeout == 600 and config.rlimit_nofile == 1024


# -- Problems are reported with file, line and reason; the rest loads -----------

def test_unknown_class_and_bad_lines_are_reported_and_the_rest_loads(filter_dir):
    path = write(filter_dir / "mixed.filters", """\
        [Filters]
        good1: CommandFilter, true, root
        typo: CommandFiltr, false, root
        this line has no delimiter
        short: RegExpFilter, sleep
        badre: RegExpFilter, sleep, root, sleep, (
        good2: CommandFilter, echo, root
        """)
    filter_set = load_filters([str(filter_dir)])
    assert [f.name for f in filter_set.filters] == ["good1", "good2"]
    reported = {(p.path, p.line): p.reason for p in filter_set.problems}
    assert "unknown filter class 'CommandFiltr'" in reported[(str(path), 3)]
    assert "expected 'name: value'" in reported[(str(path), 4)]
    assert "RegExpFilter expects" in reported[(str(path), 5)]
    assert "invalid regular expression" in reported[(str(path), 6)]
    assert str(filter_set.problems[0]).startswith(f"{path}:")


def test_file_without_filters_section_is_reported(filter_dir):
    write(filter_dir / "a.filters", "[Other]\nx: CommandFilter, true, root\n")
    write(filter_dir / "b.filters", "[Filters]\nok: CommandFilter, true, root\n")
    filter_set = load_filters([str(filter_dir)])
    assert [f.name for f in filter_set.filters] == ["ok"]
    assert "no [Filters] section" in filter_set.problems[0].reason


def test_entry_before_section_is_reported(filter_dir):
    write(filter_dir / "a.filters", "x: CommandFilter, true, root\n[Filters]\ny: CommandFilter, true, root\n")
    filter_set = load_filters([str(filter_dir)])
    assert [f.name for f in filter_set.filters] == ["y"]
    assert filter_set.problems[0].line == 1


def test_files_load_in_sorted_order_and_dotfiles_are_skipped(filter_dir):
    write(filter_dir / "b.filters", "[Filters]\nb: CommandFilter, true, root\n")
    write(filter_dir / "a.filters", "[Filters]\na: CommandFilter, true, root\n")
    write(filter_dir / ".hidden.filters", "[Filters]\nh: CommandFilter, true, root\n")
    write(filter_dir / "c.txt", "[Filters]\nc: CommandFilter, true, root\n")  # suffix is only convention
    (filter_dir / "subdir").mkdir()
    assert [f.name for f in load_filters([str(filter_dir)]).filters] == ["a", "b", "c"]


def test_missing_directories_are_skipped(filter_dir):
    write(filter_dir / "a.filters", "[Filters]\na: CommandFilter, true, root\n")
    filter_set = load_filters(["/nonexistent/dir", str(filter_dir)])
    assert [f.name for f in filter_set.filters] == ["a"] and filter_set.problems == []


def test_duplicate_names_in_one_file_keep_the_last_value(filter_dir):
    write(filter_dir / "a.filters", "[Filters]\nx: CommandFilter, true, root\nx: CommandFilter, false, root\n")
    filters = load_filters([str(filter_dir)]).filters
    assert [(f.name, f.exec_path) for f in filters] == [("x", "false")]


def test_same_name_in_two_files_gives_two_filters(filter_dir):
    write(filter_dir / "a.filters", "[Filters]\nx: CommandFilter, true, root\n")
    write(filter_dir / "b.filters", "[Filters]\nx: CommandFilter, false, root\n")
    assert len(load_filters([str(filter_dir)]).filters) == 2


def test_equals_delimiter_comments_and_case(filter_dir):
    write(filter_dir / "a.filters", """\
        # comment
        ; another
        [Filters]
        MyName = CommandFilter, true, root
        """)
    filters = load_filters([str(filter_dir)]).filters
    assert [f.name for f in filters] == ["myname"]


def test_envfilter_with_dangerous_variables_is_refused_at_load(filter_dir):
    path = write(filter_dir / "env.filters", """\
        [Filters]
        path: EnvFilter, env, root, PATH=, dnsmasq
        preload: EnvFilter, env, root, LD_PRELOAD=, dnsmasq
        pypath: EnvFilter, env, root, PYTHONPATH=, dnsmasq
        ok: EnvFilter, env, root, PROCESS_TAG=, dnsmasq
        """)
    filter_set = load_filters([str(filter_dir)])
    assert [f.name for f in filter_set.filters] == ["ok"]
    assert [p.line for p in filter_set.problems] == [2, 3, 4]
    assert all("must not let callers set" in p.reason for p in filter_set.problems)
    assert all(p.path == str(path) for p in filter_set.problems)


def test_unknown_run_as_user_is_reported(filter_dir):
    write(filter_dir / "a.filters", "[Filters]\nx: CommandFilter, true, no-such-user-here\n")
    filter_set = load_filters([str(filter_dir)])
    assert filter_set.filters == [] and "does not exist" in filter_set.problems[0].reason


@pytest.mark.skipif(os.geteuid() != 0, reason="ownership checks apply when running as root")
def test_files_writable_by_others_are_refused(filter_dir):
    write(filter_dir / "a.filters", "[Filters]\na: CommandFilter, true, root\n", mode=0o666)
    owned = write(filter_dir / "b.filters", "[Filters]\nb: CommandFilter, true, root\n")
    os.chown(owned, 65534, 65534)
    write(filter_dir / "c.filters", "[Filters]\nc: CommandFilter, true, root\n")
    filter_set = load_filters([str(filter_dir)])
    assert [f.name for f in filter_set.filters] == ["c"]
    reasons = " ".join(p.reason for p in filter_set.problems)
    assert "writable by group or others" in reasons and "owned by uid 65534" in reasons


# -- rootwrap.conf -------------------------------------------------------------

def conf(tmp_path: Path, body: str, mode: int = 0o644) -> str:
    return str(write(tmp_path / "rootwrap.conf", "[DEFAULT]\n" + body, mode))


def test_config_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin:relative/dir")
    config = load_config(conf(tmp_path, "filters_path = /a\n"))
    assert config.exec_dirs == ("/usr/bin", "/bin")  # from PATH, relative entry dropped
    assert config.use_syslog is False
    assert config.syslog_log_facility == 5 and config.syslog_log_level == 40
    assert config.daemon_timeout == 600 and config.rlimit_nofile == 1024
    assert config.daemon_allowed_uids == frozenset()


def test_config_lists_are_stripped(tmp_path):
    config = load_config(conf(tmp_path, "filters_path = /a, /b ,/c\nexec_dirs = /usr/bin, /bin\n"))
    assert config.filters_path == ("/a", "/b", "/c")
    assert config.exec_dirs == ("/usr/bin", "/bin")


def test_config_exec_dirs_refuse_relative_and_dotdot(tmp_path):
    config = load_config(conf(tmp_path, "filters_path = /a\nexec_dirs = bin, /usr/../tmp, /usr/bin\n"))
    assert config.exec_dirs == ("/usr/bin",)
    assert len(config.warnings) == 2


@pytest.mark.skipif(os.geteuid() != 0, reason="ownership checks apply when running as root")
def test_config_exec_dirs_writable_by_others_are_dropped(tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir()
    loose.chmod(0o777)
    config = load_config(conf(tmp_path, f"filters_path = /a\nexec_dirs = {loose}, /usr/bin\n"))
    assert config.exec_dirs == ("/usr/bin",)


@pytest.mark.parametrize("body, message", [
    ("exec_dirs = /bin\n", "missing filters_path"),
    ("filters_path = /a\nuse_syslog = oui\n", "Not a boolean: oui"),
    ("filters_path = /a\nsyslog_log_facility = moo\n", "Unexpected syslog facility"),
    ("filters_path = /a\nsyslog_log_level = LOUD\n", "Unexpected log level"),
    ("filters_path = /a\ndaemon_timeout = soon\n", "expected an integer"),
    ("filters_path = /a\ndaemon_socket = relative.sock\n", "absolute path"),
])
def test_config_errors_name_the_problem(tmp_path, body, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config(conf(tmp_path, body))
    assert info.value.exit_code == 97


def test_config_facility_and_level_names(tmp_path):
    config = load_config(conf(tmp_path, "filters_path = /a\nuse_syslog = yes\n"
                                        "syslog_log_facility = LOG_LOCAL3\nsyslog_log_level = info\n"))
    assert config.use_syslog and config.syslog_log_facility == 19 and config.syslog_log_level == 20
    assert load_config(conf(tmp_path, "filters_path = /a\nsyslog_log_facility = authpriv\n")).syslog_log_facility == 10


def test_config_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="Incorrect configuration file"):
        load_config(str(tmp_path / "nope.conf"))


def test_config_allowed_users_and_groups(tmp_path):
    config = load_config(conf(tmp_path, "filters_path = /a\ndaemon_allowed_users = nobody, 1234, nosuchuser\n"
                                        "daemon_allowed_groups = nogroup\n"))
    assert config.daemon_allowed_uids == {65534, 1234}
    assert config.daemon_allowed_gids == {65534}
    assert any("nosuchuser" in w for w in config.warnings)


@pytest.mark.skipif(os.geteuid() != 0, reason="ownership checks apply when running as root")
def test_config_writable_by_others_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="writable by group or others"):
        load_config(conf(tmp_path, "filters_path = /a\n", mode=0o666))


def test_copied_fixtures_match_repository_layout(tmp_path):
    # The two upstream files together still load through a filters_path dir.
    target = tmp_path / "d"
    shutil.copytree(FIXTURES, target)
    os.chmod(target, 0o755)
    filter_set = load_filters([str(target)])
    assert filter_set.problems == [] and len(filter_set.filters) == 27
