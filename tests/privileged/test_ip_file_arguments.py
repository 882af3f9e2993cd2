"""`ip` arguments that make root open a file the caller names or load BPF from it.

agent.filters once allowed `ip link set|add` and `ip route add|delete` with
IpObjectFilter lines (it now pins those writes word by word, and the tests below
use such lines, OPEN_IP_FILTERS, to prove IpObjectFilter's own refusal).
IpObjectFilter used to check only the object and the verb, so the agent (an
untrusted user that can write files it owns) could have root load a BPF
program from its own file: `ip link set DEV xdp obj /home/agent/prog.o`,
`ip route add ... encap bpf in obj FILE`, `... encap seg6local ... endpoint
obj FILE`, or open any path (`ip link set DEV netns PATH`, `ip link add X
type ../PATH`, which ip dlopen()s below its library directory). Before the
fix every attack below was allowed by the filter and run by the daemon (ip
failed on the garbage file: CommandFailed); now each is NotAllowed.

The table of such arguments is `iproute2.FILE_ARGUMENTS`; the tests derive
every abbreviation iproute2 accepts from it and check, with strace on the
installed `ip` in a throwaway network namespace, that ip opens the path
exactly for the words the table names.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from isthmus.privileged import Client, NotAllowed, iproute2
from isthmus.privileged.exceptions import EXIT_NOT_ALLOWED
from isthmus.privileged.filterfile import load_filters
from isthmus.privileged.filters import IpObjectFilter, match_command
from tests.privileged.filter_checks import allows

from .conftest import DaemonProcess, RootwrapSetup, make_world_readable_dir, require_root, start_daemon
from .test_cli import run_cli

REPO = Path(__file__).resolve().parents[2]
AGENT_FILTERS = REPO / "etc" / "isthmus" / "rootwrap.d"
EXEC_DIRS = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
# Placeholders in the forms below.
NS, DEV, FILE, PIN = "NS", "DEV", "FILE", "PIN"

# Argument lists after `ip` that make ip (as root) read FILE as a BPF object,
# fetch a pinned BPF program from PIN, or open/dlopen a path the caller chose.
XDP_FORMS = [
    ["link", "set", DEV, "xdp", "obj", FILE],
    ["link", "set", "dev", DEV, "xdpgeneric", "obj", FILE],
    ["link", "set", DEV, "xdpdrv", "object", FILE, "sec", "xdp"],
    ["link", "set", DEV, "xdpoffload", "o", FILE],
    ["link", "set", DEV, "xdp", "object-file", FILE, "section", "xdp", "verbose"],
    ["link", "set", DEV, "xdp", "obj", FILE, "program", "main"],
    ["link", "set", DEV, "xdp", "pinned", PIN],
    ["link", "set", DEV, "xdpgeneric", "object-pinned", PIN],
    ["link", "set", DEV, "xdp", "fd", PIN],
    ["link", "set", DEV, "xdp", "f", PIN],
    ["l", "s", DEV, "xdp", "p", PIN],
    ["link", "change", DEV, "xdp", "obj", FILE],
    ["li", "se", DEV, "mtu", "1400", "xdp", "ob", FILE],
    ["link", "add", "x0", "type", "dummy", "xdp", "obj", FILE],
    ["link", "add", "x0", "type", "veth", "peer", "name", "x1", "xdpgeneric", "obj", FILE],
]
ROUTE_BPF_FORMS = [
    ["route", "add", "10.9.0.0/24", "encap", "bpf", "in", "obj", FILE, "dev", DEV],
    ["route", "add", "10.9.0.0/24", "encap", "bpf", "out", "obj", FILE, "dev", DEV],
    ["route", "add", "10.9.0.0/24", "encap", "bpf", "xmit", "obj", FILE, "dev", DEV],
    ["route", "add", "10.9.0.0/24", "encap", "bpf", "headroom", "64", "xmit", "object-file", FILE, "dev", DEV],
    ["route", "add", "10.9.0.0/24", "encap", "bpf", "in", "pinned", PIN, "dev", DEV],
    ["ro", "a", "10.9.0.0/24", "encap", "bpf", "out", "o", FILE, "dev", DEV],
    ["route", "delete", "10.9.0.0/24", "encap", "bpf", "in", "obj", FILE, "dev", DEV],
    ["route", "add", "10.9.0.0/24", "nexthop", "via", "127.0.0.1", "dev", DEV, "encap", "bpf", "in", "obj", FILE],
    ["-6", "route", "add", "fc00:9::/64", "encap", "seg6local", "action", "End.BPF", "endpoint", "obj", FILE,
     "dev", DEV],
    ["-6", "route", "add", "fc00:9::/64", "encap", "seg6local", "action", "End.BPF", "endpoint", "fd", PIN,
     "dev", DEV],
]
PATH_FORMS = [
    ["link", "set", DEV, "netns", FILE],
    ["link", "set", DEV, "netns", "/proc/1/ns/net"],
    ["link", "add", "x0", "type", "veth", "peer", "name", "x1", "netns", FILE],
    ["link", "add", "x0", "type", "../../../../../../FILE"],
    ["link", "add", "x0", "ty", "../../../../../../FILE"],
]
ATTACK_FORMS = XDP_FORMS + ROUTE_BPF_FORMS + PATH_FORMS


def fill(form: list[str], *, ns: str = "r1", dev: str = "eth0", file: str = "/home/agent/prog.o",
         pin: str = "/sys/fs/bpf/agent/prog") -> list[str]:
    values = {NS: ns, DEV: dev, FILE: file, PIN: pin}
    out = []
    for word in form:
        if word in values:
            out.append(values[word])
        elif word.endswith("/FILE"):
            out.append(word[: -len("FILE")] + file.lstrip("/"))
        else:
            out.append(word)
    return out


OPEN_IP_FILTERS = """[Filters]
ip_netns: IpObjectFilter, ip, root, netns, list, add, delete, pids
ip_link: IpObjectFilter, ip, root, link, show, add, set, delete
ip_address: IpObjectFilter, ip, root, address, show, add, delete
ip_route: IpObjectFilter, ip, root, route, show, add, delete
ip_netns_exec: IpNetnsExecFilter, ip, root
"""
"""IpObjectFilter lines with free arguments, as agent.filters had them before it
pinned its writes: what an operator's own filter file may well contain."""


def shipped_filters():
    filter_set = load_filters([str(AGENT_FILTERS)])
    assert filter_set.problems == []
    return filter_set.filters


def open_ip_filters():
    directory = Path(make_world_readable_dir("isthmus-ipf-open-"))
    (directory / "ip.filters").write_text(OPEN_IP_FILTERS)
    filter_set = load_filters([str(directory)])
    shutil.rmtree(directory, ignore_errors=True)
    assert filter_set.problems == []
    return filter_set.filters


# -- the shipped agent.filters refuse every attack form ------------------------

@pytest.mark.parametrize("form", ATTACK_FORMS, ids=" ".join)
@pytest.mark.parametrize("prefix", [[], ["-n", "r1"], ["-j", "-n", "r1"], ["netns", "exec", "r1", "ip"]],
                         ids=["plain", "-n", "-j -n", "netns exec"])
def test_shipped_and_open_ip_filters_refuse_file_and_bpf_arguments(form, prefix):
    argv = ["ip", *prefix, *fill(form)]
    for filters in (shipped_filters(), open_ip_filters()):
        with pytest.raises(NotAllowed):
            match_command(filters, argv, EXEC_DIRS)


# What the agent runs through `ip` (directly, with -n NS, or inside ip netns exec).
AGENT_FORMS = [
    ["link", "add", "r1-wan", "type", "veth", "peer", "name", "r1-wan-p"],
    ["link", "add", "xwa", "netns", "r1", "type", "veth", "peer", "name", "xwb", "netns", "r2"],
    ["link", "set", "r1-wan", "netns", "r1"],
    ["link", "set", "r1-wan", "netns", "1234"],
    ["link", "set", "r1-wan", "up"], ["link", "set", "dev", "r1-wan", "down"],
    ["link", "set", "r1-lan", "master", "br0"],
    ["link", "set", "r1-wan", "address", "02:00:5e:10:00:01"],
    ["link", "set", "r1-wan", "mtu", "1400"], ["link", "set", "r1-wan", "name", "wan0"],
    ["link", "set", "lo", "up"],
    ["link", "delete", "r1-wan"], ["link", "del", "dev", "r1-wan"],
    ["link", "add", "link", "r1-lan", "name", "r1-lan.100", "type", "vlan", "id", "100"],
    ["address", "add", "198.51.100.11/24", "dev", "r1-wan"],
    ["addr", "add", "2001:db8::1/64", "dev", "r1-wan", "nodad"],
    ["address", "delete", "198.51.100.11/24", "dev", "r1-wan"],
    ["route", "add", "default", "via", "198.51.100.1"],
    ["route", "add", "default", "via", "198.51.100.1", "dev", "r1-wan"],
    ["route", "delete", "default", "via", "198.51.100.1", "dev", "r1-wan"],
    ["route", "add", "10.20.0.0/16", "via", "10.71.0.1", "proto", "77"],
    ["route", "del", "10.20.0.0/16", "via", "10.71.0.1", "proto", "77"],
    ["-6", "route", "add", "default", "via", "fe80::1", "dev", "r1-wan"],
    ["-6", "route", "add", "2001:db8:20::/48", "via", "2001:db8::1", "proto", "77"],
    ["-6", "address", "add", "2001:db8::1/64", "dev", "r1-wan", "nodad"],
    ["-j", "link", "show"], ["-j", "address", "show"], ["-j", "route", "show"],
    ["-j", "-6", "route", "show"], ["-6", "-j", "address", "show"], ["-o", "link"],
    ["link", "set", "fd00-lan", "up"],  # a name that merely starts like a refused word
]


@pytest.mark.parametrize("form", AGENT_FORMS, ids=" ".join)
@pytest.mark.parametrize("prefix", [[], ["-n", "r1"], ["netns", "exec", "r1", "ip"]],
                         ids=["plain", "-n", "netns exec"])
def test_ip_object_filter_lines_still_allow_ordinary_commands(form, prefix):
    match_command(open_ip_filters(), ["ip", *prefix, *form], EXEC_DIRS)


# -- the real daemon with IpObjectFilter lines ---------------------------------

@pytest.fixture(scope="module")
def namespace() -> Iterator[str]:
    require_root()
    name = f"isth-ipf-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


@pytest.fixture(scope="module")
def agent_daemon(namespace: str) -> Iterator[DaemonProcess]:
    setup = RootwrapSetup(make_world_readable_dir("isthmus-ipf-"))
    setup.write_filters(OPEN_IP_FILTERS, name="ip.filters")
    setup.write_filters("[Filters]\necho: CommandFilter, echo, root\n", name="common.filters")
    setup.write_config()
    process = start_daemon(setup)
    try:
        yield process
    finally:
        process.stop()
        shutil.rmtree(setup.root, ignore_errors=True)


@pytest.fixture(scope="module")
def agent_file(agent_daemon: DaemonProcess) -> Path:
    """A file the agent user wrote: not a BPF object, so a root ip that reads it fails."""
    directory = agent_daemon.setup.root / "agent-home"
    directory.mkdir(mode=0o755)
    path = directory / "prog.o"
    path.write_bytes(b"\x7fELF not really\n")
    os.chown(directory, 65534, 65534)
    os.chown(path, 65534, 65534)
    return path


@pytest.mark.parametrize("form", ATTACK_FORMS, ids=" ".join)
def test_daemon_refuses_file_and_bpf_arguments(agent_daemon: DaemonProcess, namespace: str, agent_file: Path,
                                               form):
    # Before the fix these ran as root inside the namespace (lo, no harm):
    # ip read the agent's file and failed on it, a CommandFailed.
    argv = ["ip", "-n", namespace, *fill(form, dev="lo", file=str(agent_file), pin=str(agent_file))]
    with Client(agent_daemon.socket_path, autostart=False) as client:
        with pytest.raises(NotAllowed):
            client.execute(argv, timeout=30, check=False)
        with pytest.raises(NotAllowed):
            client.execute(["ip", "netns", "exec", namespace, "ip", *argv[3:]], timeout=30, check=False)
        assert client.execute(["echo", "still", "here"]).stdout == b"still here\n"


def test_cli_refuses_xdp_from_an_agent_file(agent_daemon: DaemonProcess, namespace: str, agent_file: Path):
    result = run_cli(agent_daemon.setup.config_path, "ip", "-n", namespace, "link", "set", "lo", "xdp", "obj",
                     str(agent_file))
    assert result.returncode == EXIT_NOT_ALLOWED, result.stderr
    assert b"Unauthorized command" in result.stderr


def test_daemon_still_runs_what_the_agent_runs(agent_daemon: DaemonProcess, namespace: str):
    commands = [
        ["link", "set", "lo", "up"],
        ["link", "add", "ipf-a", "type", "veth", "peer", "name", "ipf-b"],
        ["link", "add", "ipf-br", "type", "bridge"],
        ["link", "set", "ipf-a", "address", "02:00:5e:10:00:01"],
        ["link", "set", "ipf-a", "mtu", "1400"],
        ["link", "set", "ipf-b", "master", "ipf-br"],
        ["link", "set", "ipf-a", "up"], ["link", "set", "ipf-b", "up"], ["link", "set", "dev", "ipf-br", "up"],
        # (vlan, dummy: the test kernel may lack them; the filter-level test covers vlan)
        ["link", "add", "ipf-d", "type", "veth", "peer", "name", "ipf-e"],
        ["link", "set", "ipf-d", "name", "ipf-d2"],
        ["address", "add", "198.51.100.11/24", "dev", "ipf-a"],
        ["-6", "address", "add", "2001:db8::11/64", "dev", "ipf-a", "nodad"],
        ["route", "add", "default", "via", "198.51.100.1", "dev", "ipf-a"],
        ["route", "add", "10.20.0.0/16", "via", "198.51.100.2", "proto", "77"],
        ["-6", "route", "add", "2001:db8:20::/48", "via", "2001:db8::1", "proto", "77"],
    ]
    teardown = [
        ["route", "delete", "10.20.0.0/16", "via", "198.51.100.2", "proto", "77"],
        ["route", "delete", "default", "via", "198.51.100.1", "dev", "ipf-a"],
        ["address", "delete", "198.51.100.11/24", "dev", "ipf-a"],
        ["link", "delete", "ipf-d2"],
    ]
    with Client(agent_daemon.socket_path, autostart=False) as client:
        for command in commands:
            client.execute(["ip", "-n", namespace, *command], timeout=30)
        assert b"10.20.0.0/16" in client.execute(["ip", "-n", namespace, "-j", "route", "show"]).stdout
        assert b"2001:db8:20::/48" in client.execute(["ip", "-n", namespace, "-6", "-j", "route", "show"]).stdout
        for command in teardown:
            client.execute(["ip", "-n", namespace, *command], timeout=30)
        links = client.execute(["ip", "-n", namespace, "-j", "link", "show"]).stdout
        assert b'"ipf-a"' in links and b'"ipf-d2"' not in links
        assert b"2001:db8::11" in client.execute(["ip", "netns", "exec", namespace, "ip", "-j", "-6", "address",
                                                  "show"]).stdout
        client.execute(["ip", "-n", namespace, "link", "delete", "ipf-a"], timeout=30)


# -- the table, in every abbreviation iproute2 accepts ---------------------------

def prefixes(word: str) -> list[str]:
    return [word[:length] for length in range(1, len(word) + 1)]


# Every word lib/bpf_legacy.c bpf_do_parse() takes as `obj`/`pinned`: derived from the table.
BPF_PROGRAM_SPELLINGS = sorted(
    {spelling for name, prefixed in iproute2.BPF_PROGRAM_WORDS for spelling in (prefixes(name) if prefixed else [name])}
)
# Words next to them that the loader does not take (strcmp/prefix boundaries, cBPF modes tc alone enables).
BPF_NEAR_MISSES = sorted(
    {name + "x" for name, _ in iproute2.BPF_PROGRAM_WORDS} | {name.upper() for name, _ in iproute2.BPF_PROGRAM_WORDS}
    | {"objx", "objectx", "pinnedx", "fdx", "b", "bc", "bcf", "bytecode", "bytecode-file", "off", "none", "sec"}
)
# Independent of the table: every prefix of every word bpf_do_parse() compares, cBPF's and the
# option words after the file included, so a word missing from the table shows up in the probe.
BPF_PROBE_WORDS = sorted(
    {p for word in ("object-file", "object-pinned", "pinned", "fd", "obj", "bytecode-file", "bc", "bcf",
                    "section", "program", "verbose", "export", "type") for p in prefixes(word)}
    | set(BPF_PROGRAM_SPELLINGS) | set(BPF_NEAR_MISSES)
)
LINK_TRIGGERS = sorted(iproute2.FILE_ARGUMENTS["link"].triggers)
LINK_TRIGGER_NEAR_MISSES = ["xd", "XDP", "xdpg", "xdpgen", "xdp0", "xdpgenericx", "xdpd", "xdpoff", "Xdp"]


def test_the_derived_spellings_cover_the_known_ones():
    assert {"o", "ob", "obj", "object", "object-file", "object-p", "object-pinned", "p", "pin", "pinned",
            "f", "fd"} <= set(BPF_PROGRAM_SPELLINGS)
    assert not set(BPF_PROGRAM_SPELLINGS) & set(BPF_NEAR_MISSES)
    assert LINK_TRIGGERS == ["xdp", "xdpdrv", "xdpgeneric", "xdpoffload"]


def test_every_object_ip_object_filter_knows_has_a_file_argument_entry():
    assert set(iproute2.FILE_ARGUMENTS) == set(iproute2.VERBS)


ALL_VERBS = {obj: [verb for verb, _, _ in verbs if verb != "exec"] for obj, verbs in iproute2.VERBS.items()}


def ip_object_filter(obj: str) -> IpObjectFilter:
    return IpObjectFilter("ip", "root", obj, *ALL_VERBS[obj])


@pytest.mark.parametrize("spelling", BPF_PROGRAM_SPELLINGS)
def test_bpf_program_words_are_refused_in_every_abbreviation_anywhere(spelling):
    link, route = ip_object_filter("link"), ip_object_filter("route")
    for trigger in LINK_TRIGGERS:
        assert not allows(link, ["ip", "link", "set", "eth0", trigger, spelling, "/home/agent/p.o"])
    for hook in ("in", "out", "xmit"):
        assert not allows(route, ["ip", "route", "add", "10.9.0.0/24", "encap", "bpf", hook, spelling, "/x.o",
                                  "dev", "eth0"])
    assert not allows(route, ["ip", "-6", "route", "add", "fc00::/64", "encap", "seg6local", "action", "End.BPF",
                              "endpoint", spelling, "/x.o", "dev", "eth0"])
    # Also where iproute2 would not read it as a mode word (the rule is positional-free).
    assert not allows(link, ["ip", "link", "set", "eth0", "name", spelling])
    assert not allows(route, ["ip", "route", "add", "10.9.0.0/24", "dev", spelling])
    # Objects that load nothing do not care.
    assert allows(ip_object_filter("address"), ["ip", "address", "add", "10.9.0.1/24", "dev", spelling])


@pytest.mark.parametrize("word", BPF_NEAR_MISSES)
def test_words_next_to_the_bpf_program_words_are_allowed(word):
    assert allows(ip_object_filter("link"), ["ip", "link", "set", "eth0", "alias", word])
    assert allows(ip_object_filter("route"), ["ip", "route", "add", "10.9.0.0/24", "dev", word])


def test_link_triggers_and_paths_are_refused_route_slashes_are_not():
    link, route = ip_object_filter("link"), ip_object_filter("route")
    for word in [*LINK_TRIGGERS, "xdp0", "xdpgenericx"]:
        assert not allows(link, ["ip", "link", "set", "eth0", word, "off"]), word
    for argv in (["ip", "link", "set", "eth0", "netns", "/proc/1/ns/net"],
                 ["ip", "link", "set", "eth0", "netns", "./x"], ["ip", "link", "add", "x", "type", "../x"], ["ip", "link", "help", "../../x"],
                 ["ip", "link", "set", "eth0", "alias", "a/b"]):
        assert not allows(link, argv), argv
    for word in ("bpf", "endpoint"):
        assert not allows(route, ["ip", "route", "add", "10.9.0.0/24", "dev", word])
    assert allows(route, ["ip", "route", "add", "10.9.0.0/24", "encap", "mpls", "100", "via", "10.0.0.1"])
    assert allows(link, ["ip", "link", "set", "eth0", "netns", "r1"])
    assert allows(link, ["ip", "link", "set", "eth0", "netns", "4242"])
    assert allows(link, ["ip", "link", "set", "eth0", "alias", "xd"])


# -- the installed ip agrees (strace in a throwaway network namespace) -----------

TOKEN = "isthmus-ipf-probe"
OUTSIDE = f"/nonexistent-{TOKEN}"


def touched_paths(argument_lists: list[list[str]], workdir: Path) -> list[bool]:
    """For each list, whether `ip ARGS` opened (open/openat, dlopen's too) or BPF_OBJ_GET a path in OUTSIDE.

    A path counts if it leads there lexically (`/usr/lib/.../ip/link_../../x`
    counts, `/run/netns/NAME` does not).
    """
    require_root()
    if shutil.which("strace") is None or shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs strace, unshare (util-linux) and ip (iproute2)")
    results = []
    for index, args in enumerate(argument_lists):
        log = workdir / f"strace-{index}.log"
        subprocess.run(
            ["unshare", "--net", "strace", "-f", "-qq", "-e", "trace=open,openat,bpf", "-o", str(log), "--",
             "ip", *args],
            capture_output=True, timeout=30, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}, cwd="/",
        )
        paths = re.findall(r'"([^"]*)"', log.read_text(errors="replace"))
        results.append(any(os.path.normpath(p).startswith(OUTSIDE + "/") for p in paths))
    return results


def refused_by_ip_object_filter(args: list[str]) -> bool:
    command = iproute2.parse(args)
    return not allows(ip_object_filter(command.obj), ["ip", *args])


def test_installed_ip_loads_bpf_exactly_for_the_table_words(tmp_path):
    path = f"{OUTSIDE}/prog.o"
    words = BPF_PROBE_WORDS
    lists = [["link", "set", "lo", "xdp", word, path] for word in words]
    lists += [["route", "add", "10.9.0.0/24", "encap", "bpf", "in", word, path, "dev", "lo"] for word in words]
    touched = touched_paths(lists, tmp_path)
    disagreements = [
        (args, opened) for args, opened in zip(lists, touched) if opened != (args[4 if args[0] == "link" else 6] in
                                                                            BPF_PROGRAM_SPELLINGS)
    ]
    assert disagreements == []
    assert all(refused_by_ip_object_filter(args) for args, opened in zip(lists, touched) if opened)


def test_installed_ip_opens_paths_only_where_the_filter_refuses(tmp_path):
    path = f"{OUTSIDE}/prog.o"
    relative = f"../../../../../../..{OUTSIDE}/kind"
    lists = [["link", "set", "lo", word, "obj", path] for word in LINK_TRIGGERS + LINK_TRIGGER_NEAR_MISSES]
    lists += [["link", "set", "lo", "xdp", "pinned", path], ["link", "set", "lo", "xdpgeneric", "fd", path],
              ["link", "add", "x0", "type", "veth", "peer", "name", "x1", "xdp", "obj", path],
              ["link", "set", "lo", "netns", path], ["link", "set", "lo", "netns", TOKEN],
              ["link", "add", "x0", "type", relative], ["link", "add", "x0", "ty", relative],
              ["link", "add", "x0", "type", TOKEN], ["link", "help", relative]]
    for encap in ("bpf", "bp", "bpfx", "BPF"):
        for hook in ("in", "out", "xmit", "i", "headroom"):
            lists.append(["route", "add", "10.9.0.0/24", "encap", encap, hook, "obj", path, "dev", "lo"])
    lists += [["route", "add", "10.9.0.0/24", "enca", "bpf", "in", "obj", path, "dev", "lo"],
              ["route", "add", "10.9.0.0/24", "nexthop", "via", "127.0.0.1", "dev", "lo", "encap", "bpf", "out",
               "obj", path]]
    for endpoint in ("endpoint", "endp", "Endpoint"):
        lists.append(["-6", "route", "add", "fc00:9::/64", "encap", "seg6local", "action", "End.BPF", endpoint,
                      "obj", path, "dev", "lo"])
    touched = touched_paths(lists, tmp_path)
    opened = [args for args, hit in zip(lists, touched) if hit]
    # The filter refuses everything ip opened a path for ...
    assert [args for args in opened if not refused_by_ip_object_filter(args)] == []
    # ... the probe sees the forms we know about, and exactly the strcmp() spellings trigger.
    assert [args[3] for args in opened if args[:2] == ["link", "set"] and args[4] == "obj"] == LINK_TRIGGERS
    assert ["link", "set", "lo", "netns", path] in opened and ["link", "add", "x0", "type", relative] in opened
    assert ["link", "add", "x0", "ty", relative] in opened and ["link", "help", relative] in opened
    assert sorted({(args[4], args[5]) for args in opened if args[:2] == ["route", "add"] and "nexthop" not in args}
                  ) == [("bpf", "in"), ("bpf", "out"), ("bpf", "xmit")]
    assert [args[8] for args in opened if args[0] == "-6"] == ["endpoint"]
    assert any("nexthop" in args for args in opened)
