"""How iproute2's `ip` reads its arguments, so filters judge what `ip` will do.

`ip` accepts any prefix of an option, object or verb and takes the FIRST
entry of its own table that the word is a prefix of (`matches()` in
lib/utils.c): `ip n` is `neighbor`, `ip net e` is `netns exec`, `ip vr e` is
`vrf exec`, `ip -b` is `-batch` but `-br` is `-brief`. Guessing a few
abbreviations (what the old filter did) misses some; this module carries the
tables in iproute2's order instead, transcribed from iproute2 6.1.0's source
(ip/ip.c `main()` and `cmds[]`, lib/color.c `matches_color()`, and the
`do_*()` dispatchers of ip/ipnetns.c, ipvrf.c, iplink.c, ipaddress.c,
iproute.c, ipneigh.c, iprule.c). These tables are unchanged from 6.1.0 to
6.19 and master. tests/privileged/test_iproute2.py runs the installed `ip`
on every prefix of every table entry, in a throwaway mount namespace, and
checks that it executes a program exactly when `exec_form()` says so.

The forms that make `ip` execute a program (the only callers of
`cmd_exec()`/`execvp()` in ip/ and lib/, plus batch mode, which reads
further commands from a file or stdin): `netns exec` (also with `-all`),
`vrf exec`, and `-batch`.

The arguments that make `ip` open a path the caller names or load BPF
(`link ... xdp obj FILE`, `route ... encap bpf in obj FILE`, `link ... netns
PATH` ...) are in FILE_ARGUMENTS, per object; `file_argument()` says whether
a command has one. tests/privileged/test_ip_file_arguments.py checks the
table against the installed `ip` with strace.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (CLI start-up)
if TYPE_CHECKING:
    from typing import Sequence


class IpSyntaxError(ValueError):
    """`ip` would reject these arguments (or they are outside what we model)."""


class _Option:
    """One global option of `ip` as main() tests it, in order."""

    __slots__ = ("name", "spellings", "exact", "takes_value", "exits")

    def __init__(
        self, name: str, *aliases: str, exact: bool = False, takes_value: bool = False, exits: bool = False
    ) -> None:
        self.name = name
        self.spellings = (name, *aliases)
        self.exact = exact  # strcmp() instead of matches()
        self.takes_value = takes_value
        self.exits = exits  # ip prints something and exits, ignoring the rest

    def accepts(self, word: str) -> bool:
        if self.exact:
            return word in self.spellings
        return any(_matches(word, spelling) for spelling in self.spellings)


_COLOR = "-color"

# ip/ip.c main(), in the order of its if/else chain; -color sits where
# matches_color() is called (between -rcvbuf and -help).
GLOBAL_OPTIONS: tuple[_Option, ...] = (
    _Option("-loops", takes_value=True),
    _Option("-family", takes_value=True),
    _Option("-4", exact=True),
    _Option("-6", exact=True),
    _Option("-0", exact=True),
    _Option("-M", exact=True),
    _Option("-B", exact=True),
    _Option("-human", "-human-readable"),
    _Option("-iec"),
    _Option("-stats", "-statistics"),
    _Option("-details"),
    _Option("-resolve"),
    _Option("-oneline"),
    _Option("-timestamp"),
    _Option("-tshort"),
    _Option("-Version", exits=True),
    _Option("-force"),
    _Option("-batch", takes_value=True),
    _Option("-brief"),
    _Option("-json"),
    _Option("-pretty"),
    _Option("-rcvbuf", takes_value=True),
    _Option(_COLOR),
    _Option("-help", exits=True),
    _Option("-netns", takes_value=True),
    _Option("-Numeric"),
    _Option("-all"),
    _Option("-echo", exact=True),
)

_COLOR_VALUES = frozenset({"", "always", "auto", "never"})

# ip/ip.c cmds[], in order: (word, object it selects).
OBJECTS: tuple[tuple[str, str], ...] = (
    ("address", "address"), ("addrlabel", "addrlabel"), ("maddress", "maddress"),
    ("route", "route"), ("rule", "rule"), ("neighbor", "neighbor"), ("neighbour", "neighbor"),
    ("ntable", "ntable"), ("ntbl", "ntable"), ("link", "link"), ("l2tp", "l2tp"), ("fou", "fou"),
    ("ila", "ila"), ("macsec", "macsec"), ("tunnel", "tunnel"), ("tunl", "tunnel"),
    ("tuntap", "tuntap"), ("tap", "tuntap"), ("token", "token"), ("tcpmetrics", "tcpmetrics"),
    ("tcp_metrics", "tcpmetrics"), ("monitor", "monitor"), ("xfrm", "xfrm"), ("mroute", "mroute"),
    ("mrule", "mrule"), ("netns", "netns"), ("netconf", "netconf"), ("vrf", "vrf"), ("sr", "sr"),
    ("nexthop", "nexthop"), ("mptcp", "mptcp"), ("ioam", "ioam"), ("help", "help"), ("stats", "stats"),
)

# The do_*() dispatchers of the objects whose verbs we model, in order:
# (verb, words matched by prefix, words matched exactly). The first verb
# is what `ip OBJECT` with no further word does.
VERBS: dict[str, tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]] = {
    "netns": (
        ("list", ("list", "show", "lst"), ()), ("list-id", ("list-id",), ()), ("help", ("help",), ()),
        ("add", ("add",), ()), ("set", ("set",), ()), ("delete", ("delete",), ()),
        ("identify", ("identify",), ()), ("pids", ("pids",), ()), ("exec", ("exec",), ()),
        ("monitor", ("monitor",), ()), ("attach", ("attach",), ()),
    ),
    "vrf": (
        ("show", ("show", "lst", "list"), ()), ("identify", ("identify",), ()), ("pids", ("pids",), ()),
        ("exec", ("exec",), ()), ("help", ("help",), ()),
    ),
    # iplink.c checks "show" after the modifying verbs; `ip link` alone shows.
    "link": (
        ("show", ("show", "lst", "list"), ()), ("add", ("add",), ()), ("set", ("set", "change"), ()),
        ("replace", ("replace",), ()), ("delete", ("delete",), ()), ("xstats", ("xstats",), ()),
        ("afstats", ("afstats",), ()), ("property", ("property",), ()), ("help", ("help",), ()),
    ),
    "address": (
        ("list", ("list", "show", "lst"), ()), ("add", ("add",), ()), ("change", ("change",), ("chg",)),
        ("replace", ("replace",), ()), ("delete", ("delete",), ()), ("flush", ("flush",), ()),
        ("save", ("save",), ()), ("showdump", ("showdump",), ()), ("restore", ("restore",), ()),
        ("help", ("help",), ()),
    ),
    "route": (
        ("list", ("list", "show", "lst"), ()), ("add", ("add",), ()), ("change", ("change",), ("chg",)),
        ("replace", ("replace",), ()), ("prepend", ("prepend",), ()), ("append", ("append",), ()),
        ("test", ("test",), ()), ("delete", ("delete",), ()), ("get", ("get",), ()),
        ("flush", ("flush",), ()), ("save", ("save",), ()), ("restore", ("restore",), ()),
        ("showdump", ("showdump",), ()), ("help", ("help",), ()),
    ),
    "neighbor": (
        ("show", ("show", "lst", "list"), ()), ("add", ("add",), ()), ("change", ("change",), ("chg",)),
        ("replace", ("replace",), ()), ("delete", ("delete",), ()), ("get", ("get",), ()),
        ("flush", ("flush",), ()), ("help", ("help",), ()),
    ),
    "rule": (
        ("list", ("list", "lst", "show"), ()), ("save", ("save",), ()), ("restore", ("restore",), ()),
        ("add", ("add",), ()), ("delete", ("delete",), ()), ("flush", ("flush",), ()),
        ("help", ("help",), ()),
    ),
}

# The order in which each dispatcher tests its verbs, where it differs from
# the table above (whose first entry is the default verb): iplink.c and
# the modifying-first dispatchers test "add" etc. before "show".
_DISPATCH_ORDER: dict[str, tuple[str, ...]] = {
    "vrf": ("identify", "pids", "exec", "show", "help"),
    "link": ("add", "set", "replace", "delete", "show", "xstats", "afstats", "property", "help"),
    "address": ("add", "change", "replace", "delete", "list", "flush", "save", "showdump", "restore", "help"),
    "route": (
        "add", "change", "replace", "prepend", "append", "test", "delete", "list", "get", "flush",
        "save", "restore", "showdump", "help",
    ),
    "neighbor": ("add", "change", "replace", "delete", "get", "show", "flush", "help"),
}


def _matches(word: str, name: str) -> bool:
    """iproute2's matches(): a non-empty prefix of `name`."""
    return bool(word) and name.startswith(word)


class IpCommand:
    """An `ip` argument list as iproute2 reads it.

    `options` holds (canonical option, value or None) in order; `obj` and
    `verb` are canonical names (verb only for the objects in VERBS); `args`
    are the words after the verb (after the object for other objects).
    `exits_early` is set when an option makes ip print and exit before
    looking at the object (`-Version`, `-help`, `-family help`).
    """

    __slots__ = ("options", "obj", "verb", "args", "exits_early")

    def __init__(self) -> None:
        self.options: list[tuple[str, str | None]] = []
        self.obj: str | None = None
        self.verb: str | None = None
        self.args: list[str] = []
        self.exits_early = False

    def option_names(self) -> set[str]:
        """The global options given (``-n``, ``-4`` ...), without their values."""
        return {name for name, _ in self.options}

    def option_values(self, name: str) -> list[str]:
        """The values given to option ``name``, in order."""
        return [value for option, value in self.options if option == name and value is not None]

    def __repr__(self) -> str:
        return f"IpCommand(options={self.options!r}, obj={self.obj!r}, verb={self.verb!r}, args={self.args!r})"


def parse(args: Sequence[str]) -> IpCommand:
    """Read `ip`'s arguments (without argv[0]) the way ip/ip.c main() does.

    Raises IpSyntaxError where `ip` would stop with an error (unknown option,
    object or verb, missing option value) so a filter can refuse it.
    """
    command = IpCommand()
    words = list(args)
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            i += 1
            break
        if not word.startswith("-"):
            break
        # main(): `if (opt[1] == '-') opt++;` so --batch is -batch.
        spelled = word[1:] if word[1:2] == "-" else word
        option = _find_option(spelled)
        if option is None:
            raise IpSyntaxError(f"unknown ip option {word!r}")
        value: str | None = None
        if option.name == _COLOR:
            value = spelled.partition("=")[2]
        elif option.takes_value:
            if i + 1 >= len(words):
                raise IpSyntaxError(f"ip option {word!r} needs a value")
            i += 1
            value = words[i]
        command.options.append((option.name, value))
        i += 1
        if option.exits or (option.name == "-family" and value == "help"):
            command.exits_early = True
            return command
    if "-batch" in command.option_names():
        return command  # main() runs the batch file and never reads the object
    if i >= len(words):
        return command  # no object: ip prints its usage
    command.obj = _find_object(words[i])
    rest = words[i + 1 :]
    if command.obj not in VERBS:
        command.args = rest
        return command
    if not rest:
        command.verb = VERBS[command.obj][0][0]
        return command
    if command.obj == "netns" and "-all" not in command.option_names() and len(rest) > 1:
        # do_netns() refuses a bad namespace name before it reads the verb.
        if _invalid_netns_name(rest[1]):
            raise IpSyntaxError(f"ip netns: invalid namespace name {rest[1]!r}")
    command.verb = _find_verb(command.obj, rest[0])
    command.args = rest[1:]
    return command


# (object, verb) pairs that end in cmd_exec(): they run a program.
EXEC_VERBS = frozenset({("netns", "exec"), ("vrf", "exec")})


def exec_form(command: IpCommand) -> str | None:
    """Why `ip` would execute a program or run further commands, or None."""
    if "-batch" in command.option_names():
        return "ip -batch reads more ip commands (netns exec, vrf exec) from a file or stdin"
    if (command.obj, command.verb) in EXEC_VERBS:
        return f"ip {command.obj} exec runs a program"
    return None


# -- Arguments that make `ip` open a file the caller names, or load BPF -------
#
# Read off iproute2 6.1.0 (unchanged in master): every place in ip/ and lib/
# where a command-line word becomes a path that ip opens, or a BPF program
# that it loads, for the objects in VERBS.
#
# - ip/iplink.c iplink_parse() (link add|set|change|replace, also the peer of
#   a veth): strcmp() "xdp", "xdpgeneric", "xdpdrv", "xdpoffload", then
#   ip/iplink_xdp.c xdp_parse() -> lib/bpf_legacy.c bpf_parse_and_load_common():
#   `obj FILE` opens and loads an ELF object, `pinned PATH` does BPF_OBJ_GET
#   on a path (only `xdp off|none` as the last word does not load).
# - ip/iplink.c: strcmp() "netns" VALUE -> lib/namespace.c netns_get_fd():
#   a VALUE containing "/" is open()ed as given (any file, FIFO or device node,
#   another process's /proc/PID/ns/net); else /run/netns/VALUE, else a PID.
# - ip/iplink.c: matches() "type" KIND (and `ip link help KIND`, xstats) ->
#   get_link_kind(): dlopen("<libdir>/ip/link_KIND.so"), so a KIND with "/"
#   leaves the library directory.
# - ip/iproute.c iproute_modify() and parse_one_nh() (route add|delete|...,
#   also inside `nexthop`): strcmp() "encap" TYPE -> ip/iproute_lwtunnel.c
#   lwt_parse_encap(): strcmp() TYPE "bpf" -> parse_encap_bpf(): strcmp()
#   "in"|"out"|"xmit" BPF; TYPE "seg6local" -> parse_encap_seg6local():
#   strcmp() "endpoint" BPF (End.BPF) -> lwt_parse_bpf() -> the loader above.
# - The loader, lib/bpf_legacy.c bpf_do_parse() with only the eBPF modes on
#   (xdp_parse and lwt_parse_bpf give an ebpf_cb, no cbpf_cb): matches()
#   "object-file", strcmp() "obj", matches() "object-pinned", "pinned", "fd".
#   The cBPF modes (bytecode, bytecode-file) are tc's only.
#
# Nothing else for these objects opens a path from the command line:
# address, neighbor and rule read only stdin (restore) and fixed files under
# /etc/iproute2; netns names are checked by do_netns() (parse() above); vrf
# names must be existing VRF devices. (Objects outside VERBS do: `nexthop ...
# encap bpf`, `monitor file FILE`, `xfrm monitor file FILE` -- add them here
# before adding them to VERBS.)

# (keyword, matched by prefix like matches(), else exactly like strcmp()).
BPF_PROGRAM_WORDS: tuple[tuple[str, bool], ...] = (
    ("object-file", True), ("obj", False), ("object-pinned", True), ("pinned", True), ("fd", True),
)


class FileArguments:
    """Which argument words make `ip OBJECT VERB ...` open a path or load BPF.

    `triggers`: words iproute2 compares exactly (strcmp) that start reading
    a BPF program; `trigger_prefixes`: a word starting with one of these is
    refused too (wider than iproute2, for variants such as a future `xdpX`);
    `bpf_program_words`: whether the loader's mode words (BPF_PROGRAM_WORDS,
    in every abbreviation) are refused anywhere, in case a trigger was
    missed; `paths`: whether any word containing "/" is refused.
    """

    __slots__ = ("triggers", "trigger_prefixes", "bpf_program_words", "paths", "source")

    def __init__(
        self, triggers: tuple[str, ...] = (), trigger_prefixes: tuple[str, ...] = (),
        bpf_program_words: bool = False, paths: bool = False, source: str = "",
    ) -> None:
        self.triggers = frozenset(triggers)
        self.trigger_prefixes = trigger_prefixes
        self.bpf_program_words = bpf_program_words
        self.paths = paths
        self.source = source

    def refusal(self, word: str) -> str | None:
        """Why one argument word is refused, or None; its position is not looked at."""
        if word in self.triggers or word.startswith(self.trigger_prefixes):
            return f"{word!r} makes ip load a BPF program ({self.source})"
        if self.bpf_program_words and bpf_program_word(word):
            return f"{word!r} names a BPF object file or pinned program (lib/bpf_legacy.c bpf_do_parse)"
        if self.paths and "/" in word:
            return f"{word!r} is a path: ip link opens `netns PATH` and dlopen()s `type KIND`"
        return None


_NO_FILE_ARGUMENTS = FileArguments()

FILE_ARGUMENTS: dict[str, FileArguments] = {
    "link": FileArguments(
        triggers=("xdp", "xdpgeneric", "xdpdrv", "xdpoffload"), trigger_prefixes=("xdp",),
        bpf_program_words=True, paths=True, source="ip/iplink.c, ip/iplink_xdp.c",
    ),
    "route": FileArguments(
        triggers=("bpf", "endpoint"), bpf_program_words=True,
        source="encap bpf in|out|xmit, encap seg6local endpoint: ip/iproute_lwtunnel.c",
    ),
    "address": _NO_FILE_ARGUMENTS,
    "neighbor": _NO_FILE_ARGUMENTS,
    "rule": _NO_FILE_ARGUMENTS,
    "netns": _NO_FILE_ARGUMENTS,
    "vrf": _NO_FILE_ARGUMENTS,
}


def bpf_program_word(word: str) -> bool:
    """Whether bpf_do_parse() would read `word` as `obj`/`pinned`/... (any abbreviation)."""
    return any(_matches(word, name) if prefixed else word == name for name, prefixed in BPF_PROGRAM_WORDS)


def file_argument(command: IpCommand) -> str | None:
    """Why `ip` would open a file named in, or load BPF from, `command.args`; or None.

    Refuses a word wherever it stands (not only where iproute2 would read it
    as a keyword), so an argument that is only a value -- a device named
    `o` or `xdp0`, an alias with a "/" -- is refused too. Objects outside
    FILE_ARGUMENTS are refused whole (their arguments are not modelled).
    """
    if command.obj is None:
        return None
    table = FILE_ARGUMENTS.get(command.obj)
    if table is None:
        return f"ip {command.obj}: arguments not modelled"
    for word in command.args:
        reason = table.refusal(word)
        if reason is not None:
            return f"ip {command.obj}: {reason}"
    return None


def verb_named(obj: str, spelling: str) -> str | None:
    """The verb of `obj` a full spelling names (`lst` -> `list`), or None."""
    for verb, prefixed, exact in VERBS[obj]:
        if spelling in prefixed or spelling in exact:
            return verb
    return None


def _find_option(spelled: str) -> _Option | None:
    for option in GLOBAL_OPTIONS:
        if option.name == _COLOR:
            name, _, value = spelled.partition("=")
            # matches_color(): an unknown value falls through to later options.
            if _matches(name, _COLOR) and value in _COLOR_VALUES:
                return option
            continue
        if option.accepts(spelled):
            return option
    return None


def _find_object(word: str) -> str:
    for name, obj in OBJECTS:
        if _matches(word, name):
            return obj
    raise IpSyntaxError(f"unknown ip object {word!r}")


def _find_verb(obj: str, word: str) -> str:
    table = {verb: (prefixed, exact) for verb, prefixed, exact in VERBS[obj]}
    order = _DISPATCH_ORDER.get(obj, tuple(table))
    for verb in order:
        prefixed, exact = table[verb]
        if word in exact or any(_matches(word, name) for name in prefixed):
            return verb
    raise IpSyntaxError(f"unknown ip {obj} command {word!r}")


def _invalid_netns_name(name: str) -> bool:
    """ipnetns.c invalid_name()."""
    # Arguments carry undecodable bytes as surrogates (protocol.py): count bytes.
    size = len(name.encode("utf-8", "surrogateescape"))
    return not name or size > 255 or "/" in name or name in (".", "..")
