"""iproute2's argument reading (isthmus.privileged.iproute2) against the installed `ip`.

The unit tests pin cases read off iproute2's source; test_installed_ip_*
runs the real `ip` on every prefix of every option, object and verb in the
tables (in a private mount namespace, see ip_probe.py) and requires that it
executes a program exactly when `exec_form()` says it would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from isthmus.privileged import iproute2
from isthmus.privileged.exceptions import FilterDefinitionError
from isthmus.privileged.filterfile import build_filter
from isthmus.privileged.filters import IpFilter, IpNetnsExecFilter, IpObjectFilter, ip_refusal
from tests.privileged.filter_checks import allows

from .conftest import require_root

REPO = Path(__file__).resolve().parents[2]
TOUCH = "/usr/bin/touch"


def prefixes(word: str) -> list[str]:
    return [word[:length] for length in range(1, len(word) + 1)]


def object_of(word: str) -> str | None:
    try:
        return iproute2.parse([word]).obj
    except iproute2.IpSyntaxError:
        return None


def option_of(word: str) -> str | None:
    try:
        return iproute2.parse([word, "VALUE"]).options[0][0]
    except (iproute2.IpSyntaxError, IndexError):
        return None


def exec_verdict(args: list[str]) -> bool:
    """Whether our reading says `ip ARGS` executes a program (unreadable: no)."""
    try:
        return iproute2.exec_form(iproute2.parse(args)) is not None
    except iproute2.IpSyntaxError:
        return False


OBJECT_WORDS = sorted({p for name, _ in iproute2.OBJECTS for p in prefixes(name)} | {"vrfx", "netnsx", "VRF", "x"})
OPTION_WORDS = sorted(
    {p for option in iproute2.GLOBAL_OPTIONS for spelling in option.spellings for p in prefixes(spelling)}
    | {"--" + p[1:] for option in iproute2.GLOBAL_OPTIONS for p in prefixes(option.name)[1:]}
    | {"--", "---batch", "-c=never", "-color=auto", "-c=bogus", "-e", "-x", "-n=default", "-ech"}
)


def verb_words(obj: str) -> list[str]:
    words = {"execute", "x", "E", "exe-"}
    for _, prefixed, exact in iproute2.VERBS[obj]:
        words |= {p for word in prefixed for p in prefixes(word)} | set(exact)
    return sorted(words)


# -- the tables, read off iproute2's source -----------------------------------

@pytest.mark.parametrize("word, obj", [
    ("a", "address"), ("addrl", "addrlabel"), ("m", "maddress"), ("r", "route"), ("ru", "rule"),
    ("n", "neighbor"), ("neighbou", "neighbor"), ("l", "link"), ("t", "tunnel"), ("tap", "tuntap"),
    ("mo", "monitor"), ("net", "netns"), ("netc", "netconf"), ("v", "vrf"), ("vr", "vrf"),
    ("s", "sr"), ("st", "stats"), ("h", "help"),
])
def test_object_is_the_first_table_entry_the_word_prefixes(word, obj):
    assert iproute2.parse([word]).obj == obj


@pytest.mark.parametrize("obj, word, verb", [
    ("netns", "e", "exec"), ("netns", "s", "list"), ("netns", "se", "set"), ("netns", "a", "add"),
    ("netns", "d", "delete"), ("netns", "list-", "list-id"), ("netns", "m", "monitor"),
    ("vrf", "e", "exec"), ("vrf", "l", "show"), ("vrf", "i", "identify"),
    ("link", "s", "set"), ("link", "sh", "show"), ("link", "c", "set"), ("link", "a", "add"),
    ("address", "s", "list"), ("address", "sa", "save"), ("address", "chg", "change"),
    ("route", "s", "list"), ("route", "a", "add"), ("route", "ap", "append"),
    ("neighbor", "s", "show"), ("rule", "s", "list"),
])
def test_verb_follows_the_dispatch_order_of_its_object(obj, word, verb):
    assert iproute2.parse([obj, word, "x"]).verb == verb


@pytest.mark.parametrize("option, name, takes_value", [
    ("-", "-loops", True), ("-l", "-loops", True), ("-f", "-family", True), ("-fo", "-force", False),
    ("-b", "-batch", True), ("-br", "-brief", False), ("--ba", "-batch", True), ("-r", "-resolve", False),
    ("-rc", "-rcvbuf", True), ("-h", "-human", False), ("-human-r", "-human", False),
    ("-n", "-netns", True), ("--netns", "-netns", True), ("-N", "-Numeric", False), ("-a", "-all", False),
    ("-c", "-color", False), ("-col=never", "-color", False), ("-s", "-stats", False), ("-4", "-4", False),
])
def test_global_options_and_their_values(option, name, takes_value):
    args = [option, "VALUE", "link"] if takes_value else [option, "link"]
    command = iproute2.parse(args)
    assert command.options == [(name, "VALUE" if takes_value else command.options[0][1])]
    # Batch mode runs the file and never reads an object.
    assert command.obj == (None if name == "-batch" else "link")


def test_option_value_is_never_the_object_and_the_object_never_an_option():
    assert iproute2.parse(["-n", "vrf", "link"]).obj == "link"
    assert iproute2.parse(["-n", "netns", "netns", "exec", "x", "sh"]).verb == "exec"
    # "--" ends the options, so "-b" after it is an (unknown) object, not batch mode.
    with pytest.raises(iproute2.IpSyntaxError, match="unknown ip object '-b'"):
        iproute2.parse(["--", "-b", "x"])


@pytest.mark.parametrize("args", [
    ["-e", "link"], ["-ech", "link"], ["---batch", "x"], ["-c=bogus", "link"], ["-n"], ["-n=x", "link"],
    ["linkx"], ["vrf", "bogus"], ["netns", "exec", "a/b", "sh"], ["netns", "add", ".."],
])
def test_what_ip_rejects_is_a_syntax_error(args):
    with pytest.raises(iproute2.IpSyntaxError):
        iproute2.parse(args)


def test_undecodable_bytes_in_a_namespace_name_are_counted_not_a_crash():
    name = "\udcff" * 128  # 128 bytes 0xff as the daemon decodes them
    assert iproute2.parse(["netns", "add", name]).verb == "add"
    with pytest.raises(iproute2.IpSyntaxError):
        iproute2.parse(["netns", "add", name * 2])  # 256 bytes: over NAME_MAX


def test_options_that_exit_hide_the_rest():
    for args in (["-V", "vrf", "exec", "x", "sh"], ["-he", "netns", "exec", "x", "sh"], ["-f", "help", "vrf"]):
        command = iproute2.parse(args)
        assert command.exits_early and command.obj is None and iproute2.exec_form(command) is None


# -- every derived abbreviation of every exec form is refused ------------------

EXEC_OBJECT_VERBS = [
    (obj_word, verb_word)
    for obj, verb in sorted(iproute2.EXEC_VERBS)
    for obj_word in OBJECT_WORDS if object_of(obj_word) == obj
    for verb_word in verb_words(obj) if exec_verdict([obj_word, verb_word, "n", "sh"])
]
OPTION_PREFIXES = [
    [], ["-n", "ns1"], ["-netns", "ns1"], ["--netns", "ns1"], ["-o"], ["-d", "-j"], ["--"], ["-c"],
    ["-color=never"], ["-l", "1"], ["-rc", "65536"], ["-f", "inet"], ["-4"], ["-all"], ["-", "3"],
]


def test_the_derived_exec_forms_cover_the_known_spellings():
    assert ("v", "e") in EXEC_OBJECT_VERBS and ("vr", "exe") in EXEC_OBJECT_VERBS
    assert ("net", "e") in EXEC_OBJECT_VERBS and ("netns", "exec") in EXEC_OBJECT_VERBS
    # "n" is neighbor and "ne" too; "netns" starts at "net".
    assert not any(word in ("n", "ne") for word, _ in EXEC_OBJECT_VERBS)


@pytest.mark.parametrize("options", OPTION_PREFIXES, ids=" ".join)
def test_ip_filter_refuses_every_exec_spelling(options):
    ip = IpFilter("ip", "root")
    for obj_word, verb_word in EXEC_OBJECT_VERBS:
        argv = ["ip", *options, obj_word, verb_word, "default", "/bin/sh", "-c", "id"]
        assert not allows(ip, argv), argv
        assert ip_refusal(argv) is not None


BATCH_WORDS = [word for word in OPTION_WORDS if option_of(word) == "-batch"]


def test_ip_filter_refuses_every_batch_spelling():
    assert {"-b", "-ba", "-batch", "--b", "--batch"} <= set(BATCH_WORDS) and "-br" not in BATCH_WORDS
    for word in BATCH_WORDS:
        for argv in (["ip", word, "-"], ["ip", "-o", word, "/tmp/cmds", "link"], ["ip", "-fo", word, "-"]):
            assert not allows(IpFilter("ip", "root"), argv), argv


def test_ip_netns_exec_filter_reads_abbreviations_and_options_like_ip():
    filt = IpNetnsExecFilter("ip", "root")
    argv = ["ip", "-n", "outer", "-o", "net", "e", "inner", "sysctl", "-w", "x=1"]
    assert filt.split(argv) == (["-n", "outer", "-o", "net", "e", "inner"], ["sysctl", "-w", "x=1"])
    assert filt.split(["ip", "--", "netns", "exec", "r1", "id"]) == (["--", "netns", "exec", "r1"], ["id"])
    # -n consumes "netns": what follows is object "exec", which ip rejects.
    assert filt.split(["ip", "-n", "netns", "exec", "r1", "id"]) is None
    for argv in (["ip", "-all", "netns", "exec", "id", "x"], ["ip", "-fo", "netns", "exec", "r1", "id"],
                 ["ip", "vrf", "exec", "default", "id"], ["ip", "-n", "../x", "netns", "exec", "r1", "id"],
                 ["ip", "netns", "exec", "-x", "id"]):
        assert filt.split(argv) is None, argv


# -- IpObjectFilter ------------------------------------------------------------

def test_ip_object_filter_allows_its_verbs_in_every_abbreviation():
    link = IpObjectFilter("ip", "root", "link", "show", "set")
    assert allows(link, ["ip", "l", "s", "dev", "eth0", "up"])  # "s" is set, not show
    assert allows(link, ["ip", "-n", "r1", "-o", "link"])  # no verb: show
    assert allows(link, ["ip", "--", "li", "sh"])
    assert not allows(link, ["ip", "link", "add", "x", "type", "dummy"])
    assert not allows(link, ["ip", "address", "show"])
    assert not allows(link, ["ip", "-b", "-"])
    assert not allows(link, ["ip", "-all", "link"]) and not allows(link, ["ip", "-force", "link"])
    assert not allows(link, ["ip", "-n", "../../proc/1/ns/net", "link"])
    netns = IpObjectFilter("ip", "root", "netns", "list", "add", "delete")
    assert allows(netns, ["ip", "netns", "del", "r1"]) and allows(netns, ["ip", "net"])
    assert not allows(netns, ["ip", "netns", "exec", "r1", "id"]) and not allows(netns, ["ip", "netns", "e", "r1", "id"])


@pytest.mark.parametrize("definition, message", [
    ("IpObjectFilter, ip, root, netns, exec", "executes programs"),
    ("IpObjectFilter, ip, root, vrf, show, exec", "executes programs"),
    ("IpObjectFilter, ip, root, link, sh", "unknown verb 'sh' of ip link"),
    ("IpObjectFilter, ip, root, lnk, show", "unknown ip object 'lnk'"),
    ("IpObjectFilter, /usr/local/bin/ipvrf, root, link, show", "must be named ip"),
    ("IpFilter, /sbin/ipnetns, root", "must be named ip"),
])
def test_ip_object_filter_definition_errors(definition, message):
    with pytest.raises(FilterDefinitionError, match=message):
        build_filter("x", definition)


# -- the installed ip agrees ---------------------------------------------------

def run_probe(argument_lists: list[list[str]], tmp_path: Path) -> list[dict]:
    require_root()
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs unshare (util-linux) and ip (iproute2)")
    workdir = tmp_path / "probe"
    workdir.mkdir()
    outcome = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable, "-m", "tests.privileged.ip_probe",
         str(workdir)],
        input=json.dumps(argument_lists), capture_output=True, text=True, cwd=REPO, timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert outcome.returncode == 0, outcome.stderr
    return json.loads(outcome.stdout)


def assert_exec_verdicts_match(argument_lists: list[list[str]], tmp_path: Path) -> None:
    results = run_probe(argument_lists, tmp_path)
    disagreements = [
        (args, result["executed"], result["stderr"].strip()[:100])
        for args, result in zip(argument_lists, results)
        if result["executed"] != exec_verdict(args)
    ]
    assert disagreements == []
    assert any(result["executed"] for result in results)  # the probe can see an exec


def test_installed_ip_executes_exactly_for_the_objects_we_say(tmp_path):
    assert_exec_verdicts_match([[word, "exec", "default", TOUCH, "MARKER"] for word in OBJECT_WORDS], tmp_path)


def test_installed_ip_executes_exactly_for_the_verbs_we_say(tmp_path):
    lists = [
        [obj, word, "default", TOUCH, "MARKER"]
        for obj in ("netns", "vrf") for word in verb_words(obj)
        # `ip netns monitor` waits for namespace events forever.
        if not (obj == "netns" and _parses_to(["netns", word, "default"], "monitor"))
    ]
    assert_exec_verdicts_match(lists, tmp_path)


def test_installed_ip_reads_global_options_as_we_do(tmp_path):
    lists = [[word, "netns", "exec", "default", TOUCH, "MARKER"] for word in OPTION_WORDS]
    lists += [["-all", "netns", "exec", TOUCH, "MARKER"], ["-n", "default", "vrf", "e", "default", TOUCH, "MARKER"]]
    assert_exec_verdicts_match(lists, tmp_path)
    # Options we call unknown are unknown to ip too (and not silently taken as values).
    second = tmp_path / "second"
    second.mkdir()
    results = run_probe([[word, "link"] for word in OPTION_WORDS], second)
    for word, result in zip(OPTION_WORDS, results):
        try:
            iproute2.parse([word, "link"])
        except iproute2.IpSyntaxError:
            assert "is unknown" in result["stderr"], (word, result["stderr"])


def _parses_to(args: list[str], verb: str) -> bool:
    try:
        return iproute2.parse(args).verb == verb
    except iproute2.IpSyntaxError:
        return False
