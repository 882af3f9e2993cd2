"""Command filters with oslo.rootwrap's names, arguments and matching rules.

A filter answers one question: may this argv run, and if so, what exactly
is executed? The answer is always the filter's own executable resolved
through `exec_dirs` (never the caller's argv[0]), plus arguments.

Where oslo.rootwrap's rules let a caller escape, these are stricter (see
docs/privileged.md, "Differences from oslo.rootwrap"):

- chaining filters (`IpNetnsExecFilter`, `ChainingRegExpFilter`) match the
  inner command as sent, not its basename, and execute the inner filter's
  resolved executable, so a caller-owned `/tmp/x/ip` never runs;
- `IpFilter` reads its arguments as iproute2 does (`iproute2.py`) and
  refuses every form that executes a program (netns exec, vrf exec, batch
  mode) in any abbreviation, and whatever `ip` would reject; the Isthmus
  class `IpObjectFilter` allow-lists `ip` objects and verbs;
- regular expressions must match the whole argument (`re.fullmatch`, so
  alternations and trailing newlines cannot escape the anchor), a bare `.`
  not followed by a quantifier matches a literal dot, and arguments with a
  `..` path component are refused;
- `PathFilter` compares real paths on path-component boundaries and refuses
  relative arguments;
- `EnvFilter` never mutates the caller's argv, refuses dangerous variable
  names (PATH, LD_*, PYTHON*, ...) when the filter is defined, and checks
  the words after the command as patterns instead of ignoring them.
"""

from __future__ import annotations

import os
import stat

from isthmus.privileged import iproute2
from isthmus.privileged.exceptions import ExecutableNotFound, FilterDefinitionError, NotAllowed
from isthmus.privileged.ini import ascii_int
from isthmus.privileged.trust import untrusted_reason

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (CLI start-up)
if TYPE_CHECKING:
    import re
    from typing import ClassVar, Sequence

_QUANTIFIERS = frozenset("*+?{")
_REGEX_META = frozenset(".^$*+?{}[]\\|()")

# Variables that change what a program loads or executes; an EnvFilter
# that lets the caller set them would hand out root.
_DANGEROUS_ENV_NAMES = frozenset({
    "PATH", "HOME", "IFS", "ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "PS4",
    "CDPATH", "GLOBIGNORE", "GCONV_PATH", "GLIBC_TUNABLES", "HOSTALIASES",
    "LOCALDOMAIN", "RES_OPTIONS", "NLSPATH", "LOCPATH", "TZDIR",
    "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "OPENSSL_CONF", "OPENSSL_ENGINES",
})
_DANGEROUS_ENV_PREFIXES = ("LD_", "PYTHON", "PERL", "RUBY", "NODE_", "BASH_FUNC_", "MALLOC_", "LUA_", "XDG_")


class Plan:
    """What a leaf filter would run for an argv, before exec_dirs resolution."""

    __slots__ = ("exec_path", "args", "env")

    def __init__(self, exec_path: str, args: list[str], env: dict[str, str] | None = None) -> None:
        self.exec_path, self.args, self.env = exec_path, args, env or {}


class Match:
    """The outcome of a successful match: exactly what will be executed."""

    __slots__ = ("filter_name", "command", "env", "run_as")

    def __init__(self, filter_name: str, command: list[str], env: dict[str, str], run_as: str) -> None:
        self.filter_name, self.command, self.env, self.run_as = filter_name, command, env, run_as

    def __repr__(self) -> str:
        return f"Match({self.filter_name!r}, command={self.command!r}, env={self.env!r}, run_as={self.run_as!r})"


def dangerous_env_name(name: str) -> bool:
    """True for variables that let the caller choose code the command loads."""
    return name in _DANGEROUS_ENV_NAMES or name.startswith(_DANGEROUS_ENV_PREFIXES)


class FilterPattern:
    """A filter regex matched with `fullmatch`, a bare `.` meaning a literal dot.

    `.` followed by `*`, `+`, `?` or `{` keeps its wildcard meaning, so
    `.*` still means "anything"; `strongswan.d` no longer accepts
    `strongswan_d`. Compiled on first use so the CLI only imports `re` when
    a regex filter is actually consulted; `validate()` compiles eagerly.
    """

    __slots__ = ("text", "_compiled", "_literal")

    def __init__(self, text: str) -> None:
        self.text = text
        self._compiled: re.Pattern[str] | None = None
        # Most patterns are plain words ("sleep", "-w", "root"): compare
        # those as strings, which is what fullmatch would do, without `re`.
        self._literal = None if any(char in _REGEX_META for char in text) else text

    def __repr__(self) -> str:
        return f"FilterPattern({self.text!r})"

    def validate(self) -> None:
        """Compile now; FilterDefinitionError if the expression is invalid."""
        if self._compiled is None:
            import re

            try:
                self._compiled = re.compile(_literal_dots(self.text))
            except re.error as exc:
                raise FilterDefinitionError(f"invalid regular expression {self.text!r}: {exc}") from None

    def fullmatch(self, value: str) -> bool:
        """Whether the whole ``value`` matches; a pattern that does not compile matches nothing."""
        if self._literal is not None:
            return value == self._literal
        try:
            self.validate()
        except FilterDefinitionError:
            return False  # as in oslo.rootwrap, a broken pattern matches nothing
        assert self._compiled is not None
        return self._compiled.fullmatch(value) is not None


def compile_pattern(pattern: str) -> FilterPattern:
    """A filter's regular expression, compiled as oslo.rootwrap reads it."""
    return FilterPattern(pattern)


def _literal_dots(pattern: str) -> str:
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if char == "]":
                in_class = False
        elif char == "[":
            in_class = True
            # A ']' right after '[' or '[^' is a literal member, not the end.
            out.append(char)
            i += 1
            if pattern[i : i + 1] == "^":
                out.append("^")
                i += 1
            if pattern[i : i + 1] == "]":
                out.append("]")
                i += 1
            continue
        elif char == "." and pattern[i + 1 : i + 2] not in _QUANTIFIERS:
            # pattern[i+1:i+2] is "" at the end, which is not a quantifier.
            out.append(r"\.")
            i += 1
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _has_dotdot(value: str) -> bool:
    return ".." in value.split("/")


def _names_command(exec_path: str, argv0: str) -> bool:
    """oslo.rootwrap's command check: the exact exec_path or its basename."""
    return argv0 == exec_path or argv0 == os.path.basename(exec_path)


class CommandFilter:
    """`name: CommandFilter, exec_path, run_as`: the command with any arguments."""

    usage: ClassVar[str] = "exec_path, run_as"
    min_args: ClassVar[int] = 2
    patterns: Sequence[FilterPattern] = ()

    def __init__(self, exec_path: str, run_as: str, *args: str) -> None:
        self.name = type(self).__name__
        self.exec_path = exec_path
        self.run_as = run_as
        self.args = list(args)
        # oslo.rootwrap's command check: the exact exec_path or its basename.
        self._command_names = frozenset({exec_path, os.path.basename(exec_path)})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, exec_path={self.exec_path!r}, run_as={self.run_as!r})"

    def plan(self, argv: Sequence[str], exec_dirs: Sequence[str] = ()) -> Plan | None:
        """The executable and arguments this filter allows for argv, or None."""
        if not argv or argv[0] not in self._command_names:
            return None
        return Plan(self.exec_path, list(argv[1:]))

    def validate(self) -> None:
        """Check everything that is checked lazily (regexes); FilterDefinitionError."""
        for pattern in self.patterns:
            pattern.validate()


class RegExpFilter(CommandFilter):
    """`RegExpFilter, exec_path, run_as, re0, re1, ...`: one pattern per argv word.

    As in oslo.rootwrap, `re0` is matched against the command name the
    caller sent and `exec_path` is what runs.
    """

    usage = "exec_path, run_as, regex for argv[0], regex for argv[1], ..."

    def __init__(self, exec_path: str, run_as: str, *patterns: str) -> None:
        super().__init__(exec_path, run_as, *patterns)
        self.patterns = [compile_pattern(p) for p in patterns]

    def plan(self, argv: Sequence[str], exec_dirs: Sequence[str] = ()) -> Plan | None:
        if not argv or len(argv) != len(self.patterns):
            return None
        for pattern, value in zip(self.patterns, argv):
            if _has_dotdot(value) or not pattern.fullmatch(value):
                return None
        return Plan(self.exec_path, list(argv[1:]))


class PathFilter(CommandFilter):
    """`PathFilter, exec_path, run_as, c1, c2, ...`: one constraint per argument.

    `pass` accepts anything, a relative constraint must equal the argument,
    an absolute constraint is a directory the argument's real path must be
    inside (or equal to). The command receives the resolved paths.
    """

    usage = "exec_path, run_as, constraint for argv[1], ..."

    def plan(self, argv: Sequence[str], exec_dirs: Sequence[str] = ()) -> Plan | None:
        if len(argv) < 2 or len(argv) - 1 != len(self.args):
            return None
        if argv[0] not in self._command_names:
            return None
        args: list[str] = []
        for constraint, value in zip(self.args, argv[1:]):
            if constraint == "pass":
                args.append(value)
            elif not constraint.startswith("/"):
                if value != constraint:
                    return None
                args.append(value)
            else:
                real = _path_inside(value, constraint)
                if real is None:
                    return None
                args.append(real)
        return Plan(self.exec_path, args)


def _path_inside(value: str, directory: str) -> str | None:
    """The real path of `value` if it lies inside `directory`, else None."""
    if not value.startswith("/"):
        return None
    real = os.path.realpath(value)
    base = os.path.realpath(directory)
    if real == base or real.startswith(base.rstrip("/") + "/"):
        return real
    return None


class KillFilter(CommandFilter):
    """`KillFilter, run_as, target_exe, sig1, sig2, ...`: `kill [SIG] PID` of one program.

    The target is read from `/proc/PID/exe`; a relative target must be found
    in one of exec_dirs (oslo.rootwrap uses its own PATH).
    """

    usage = "run_as, target executable, allowed signals..."

    def __init__(self, run_as: str, target_exe: str, *signals: str) -> None:
        super().__init__("/bin/kill", run_as, target_exe, *signals)
        self.target_exe = target_exe
        self.signals = list(signals)

    def plan(self, argv: Sequence[str], exec_dirs: Sequence[str] = ()) -> Plan | None:
        if not argv or argv[0] != "kill":
            return None
        if len(argv) == 3:
            if argv[1] not in self.signals:
                return None
        elif len(argv) != 2 or self.signals:
            return None
        pid = ascii_int(argv[-1])
        if pid is None or pid <= 0:
            return None
        program = _pid_executable(pid)
        if program is None:
            return None
        if os.path.isabs(self.target_exe):
            ok = program == self.target_exe
        else:
            ok = (
                os.path.basename(program) == self.target_exe
                and os.path.dirname(program) in set(exec_dirs)
            )
        return Plan(self.exec_path, list(argv[1:])) if ok else None


def _pid_executable(pid: int) -> str | None:
    """The executable of a process, as the kernel reports it."""
    try:
        target = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None
    # An upgraded or deleted binary shows as "path (deleted)" and older
    # kernels may append a NUL part; both name the same program.
    target = target.split("\0", 1)[0]
    return target.removesuffix(" (deleted)")


class ReadFileFilter(CommandFilter):
    """`ReadFileFilter, file_path`: exactly `cat file_path`, as root."""

    usage = "file_path"
    min_args = 1

    def __init__(self, file_path: str, *args: str) -> None:
        super().__init__("/bin/cat", "root", file_path, *args)
        self.file_path = file_path

    def plan(self, argv: Sequence[str], exec_dirs: Sequence[str] = ()) -> Plan | None:
        if list(argv) != ["cat", self.file_path]:
            return None
        return Plan(self.exec_path, [self.file_path])


class IpFilter(CommandFilter):
    """`IpFilter, exec_path, run_as`: `ip` with anything but the forms that execute programs.

    The arguments are read the way iproute2 reads them (`iproute2.parse`), so
    every abbreviation and option value is seen as `ip` sees it; forms `ip`
    would reject, or that we cannot read, are refused (fail closed).
    """

    def __init__(self, exec_path: str, run_as: str, *args: str) -> None:
        super().__init__(exec_path, run_as, *args)
        _check_ip_exec_path(exec_path, type(self).__name__)

    def plan(self, argv: Sequence[str], exec_dirs: Sequence[str] = ()) -> Plan | None:
        if not argv or argv[0] != "ip" or ip_refusal(argv) is not None:
            return None
        return Plan(self.exec_path, list(argv[1:]))


def ip_refusal(argv: Sequence[str]) -> str | None:
    """Why `ip` must not run with these arguments through IpFilter, or None.

    Refused: whatever executes a program or reads more commands
    (`iproute2.exec_form`: netns exec, vrf exec, batch mode), `-force`
    (only meaningful with batch mode), forms `ip` would reject, and an
    `-n`/`-netns` value that is not a plain namespace name (ip opens
    /run/netns/VALUE, so `../../proc/1/ns/net` would be a path).
    """
    try:
        command = iproute2.parse(argv[1:])
    except iproute2.IpSyntaxError as exc:
        return str(exc)
    return iproute2.exec_form(command) or _ip_option_refusal(command)


def _ip_option_refusal(command: iproute2.IpCommand) -> str | None:
    if "-force" in command.option_names():
        return "ip -force only makes sense with batch mode"
    for name in command.option_values("-netns"):
        if not valid_netns_name(name):
            return f"ip -netns {name!r} is not a plain namespace name"
    return None


def _check_ip_exec_path(exec_path: str, class_name: str) -> None:
    # ip runs `ip OBJECT` for a program named ipOBJECT (ip/ip.c, basename+2):
    # the argument model below only holds for a program called `ip`.
    if os.path.basename(exec_path) != "ip":
        raise FilterDefinitionError(
            f"{class_name} models iproute2's `ip`; its executable must be named ip, got {exec_path!r}"
        )


class IpObjectFilter(CommandFilter):
    """`IpObjectFilter, exec_path, run_as, OBJECT, VERB[, VERB...]`: an allow-list line for `ip`.

    Allows `ip [OPTIONS] OBJECT VERB ARGS...` where OBJECT and VERB, in any
    abbreviation iproute2 accepts, select the named object and one of the
    named verbs (`ip n a` is `neighbor add`); `ip OBJECT` alone is the
    object's listing verb. OPTIONS are the display and namespace options
    (no -batch, -force, -all, -Version, -help), an `-n NS` must be a plain
    name. Objects and verbs are those of `iproute2.VERBS`; verbs that
    execute programs (`netns exec`) cannot be listed.

    ARGS are checked only for words that make `ip` open a file the caller
    names or load BPF (`iproute2.FILE_ARGUMENTS`, `file_argument()`): any
    such word anywhere after the verb refuses the command, whether or not
    iproute2 would read it as a keyword there.
    - link: a word starting with `xdp` (`xdp`, `xdpgeneric`, `xdpdrv`,
      `xdpoffload` load BPF), any word containing "/" (`netns PATH` opens
      the path, `type ../X` is dlopen()ed outside ip's library directory);
    - route: `bpf` (`encap bpf in|out|xmit`) and `endpoint` (`encap
      seg6local ... endpoint`);
    - link and route: the BPF loader's words in every abbreviation iproute2
      accepts (any prefix of `object-file`, `object-pinned`, `pinned`,
      `fd`, and `obj`), in case another way into the loader was missed.
    A device or other value spelled like one of these (`o`, `p`, `fd`,
    `xdp0`, `bpf`, an alias with "/") is refused too: a refused odd name
    is acceptable, a BPF load is not. Other ARGS are not checked: allow a
    verb only if all its other arguments are acceptable.
    """

    usage = "exec_path, run_as, object, verb, ..."
    min_args = 4

    _REFUSED_OPTIONS = frozenset({"-batch", "-force", "-all", "-Version", "-help"})

    def __init__(self, exec_path: str, run_as: str, obj: str, *verbs: str) -> None:
        super().__init__(exec_path, run_as, obj, *verbs)
        _check_ip_exec_path(exec_path, "IpObjectFilter")
        if obj not in iproute2.VERBS:
            known = ", ".join(sorted(iproute2.VERBS))
            raise FilterDefinitionError(f"IpObjectFilter: unknown ip object {obj!r}; expected one of: {known}")
        allowed: set[str] = set()
        for verb in verbs:
            canonical = iproute2.verb_named(obj, verb)
            if canonical is None:
                known = ", ".join(name for name, _, _ in iproute2.VERBS[obj])
                raise FilterDefinitionError(
                    f"IpObjectFilter: unknown verb {verb!r} of ip {obj}; expected one of: {known}"
                )
            if (obj, canonical) in iproute2.EXEC_VERBS:
                raise FilterDefinitionError(
                    f"IpObjectFilter: ip {obj} {verb} executes programs; use IpNetnsExecFilter, "
                    "which checks the program against the other filters"
                )
            allowed.add(canonical)
        self.obj = obj
        self.verbs = frozenset(allowed)

    def plan(self, argv: Sequence[str], exec_dirs: Sequence[str] = ()) -> Plan | None:
        if not argv or argv[0] != "ip":
            return None
        try:
            command = iproute2.parse(argv[1:])
        except iproute2.IpSyntaxError:
            return None
        if command.exits_early or command.obj != self.obj or command.verb not in self.verbs:
            return None
        if command.option_names() & self._REFUSED_OPTIONS or _ip_option_refusal(command):
            return None
        if iproute2.file_argument(command) is not None:
            return None
        return Plan(self.exec_path, list(argv[1:]))


class EnvFilter(CommandFilter):
    """`EnvFilter, env, run_as, NAME1=, NAME2=, command[, regex...]`: set variables, then run.

    The caller sends `[env] NAME1=v NAME2=v command args...`; the set of
    names must equal the filter's. Words after the command in the filter are
    patterns the remaining arguments must match one to one (oslo.rootwrap
    ignores them); without such words any arguments are accepted.
    """

    usage = "exec_path, run_as, NAME=, ..., command[, argument regexes...]"
    min_args = 3

    def __init__(self, exec_path: str, run_as: str, *args: str) -> None:
        super().__init__(exec_path, run_as, *args)
        names: list[str] = []
        words = list(args)
        while words and "=" in words[0]:
            name = words.pop(0).split("=", 1)[0]
            if not (name.isidentifier() and name.isascii()):
                raise FilterDefinitionError(f"{name!r} is not a valid environment variable name")
            if dangerous_env_name(name):
                raise FilterDefinitionError(
                    f"EnvFilter must not let callers set {name}: it changes which code runs as root; "
                    "remove it from the filter"
                )
            names.append(name)
        if not names:
            raise FilterDefinitionError("EnvFilter needs at least one NAME= before the command")
        if not words:
            raise FilterDefinitionError("EnvFilter needs a command after its NAME= list")
        self.env_names = frozenset(names)
        self.command = words[0]
        self.arg_patterns = self.patterns = [compile_pattern(p) for p in words[1:]]

    def plan(self, argv: Sequence[str], exec_dirs: Sequence[str] = ()) -> Plan | None:
        words = list(argv)
        if words and words[0] == "env":
            words = words[1:]
        env: dict[str, str] = {}
        names: set[str] = set()
        while words and "=" in words[0]:
            name, value = words.pop(0).split("=", 1)
            names.add(name)
            if value:
                env[name] = value
        if names != self.env_names or not words:
            return None
        if not _names_command(self.command, words[0]):
            return None
        rest = words[1:]
        if self.arg_patterns:
            if len(rest) != len(self.arg_patterns):
                return None
            if any(_has_dotdot(v) or not p.fullmatch(v) for p, v in zip(self.arg_patterns, rest)):
                return None
        exec_path = self.command if os.path.basename(self.exec_path) == "env" else self.exec_path
        return Plan(exec_path, rest, env)


class ChainingFilter(CommandFilter):
    """Base of filters whose argv ends in another command, checked on its own."""

    def split(self, argv: Sequence[str]) -> tuple[list[str], list[str]] | None:
        """(outer arguments after argv[0], inner argv), or None if not this shape."""
        return None

    def plan(self, argv: Sequence[str], exec_dirs: Sequence[str] = ()) -> Plan | None:
        # A chaining filter never allows anything by itself; match_command
        # combines it with the filter that allows the inner command.
        return None


class IpNetnsExecFilter(ChainingFilter):
    """`IpNetnsExecFilter, exec_path, root`: `ip [OPTIONS] netns exec NS <allowed command>`.

    Read the way iproute2 reads it (any abbreviation: `ip net e NS ...`,
    `ip -n OTHER netns exec NS ...`); `-all`, batch mode and `-force` are
    refused and NS must be a plain name. The inner command is checked
    against the non-chaining filters, none of which allows an exec form.
    """

    def __init__(self, exec_path: str, run_as: str, *args: str) -> None:
        super().__init__(exec_path, run_as, *args)
        _check_ip_exec_path(exec_path, type(self).__name__)

    def split(self, argv: Sequence[str]) -> tuple[list[str], list[str]] | None:
        if self.run_as != "root" or not argv or argv[0] != "ip":
            return None
        try:
            command = iproute2.parse(argv[1:])
        except iproute2.IpSyntaxError:
            return None
        if command.obj != "netns" or command.verb != "exec" or len(command.args) < 2:
            return None
        if command.option_names() & {"-all", "-batch", "-force"} or _ip_option_refusal(command):
            return None
        namespace = command.args[0]
        if not valid_netns_name(namespace):
            return None
        inner_start = len(argv) - len(command.args) + 1
        return list(argv[1:inner_start]), list(argv[inner_start:])


def valid_netns_name(name: str) -> bool:
    """A namespace name `ip netns` would store as one file under /run/netns."""
    return (
        0 < len(name) <= 255
        and "/" not in name
        and "\0" not in name
        and name not in (".", "..")
        and not name.startswith("-")
    )


class ChainingRegExpFilter(ChainingFilter):
    """`ChainingRegExpFilter, exec_path, run_as, re0, ...`: a prefix, then an allowed command."""

    usage = "exec_path, run_as, regex for argv[0], ..."

    def __init__(self, exec_path: str, run_as: str, *patterns: str) -> None:
        super().__init__(exec_path, run_as, *patterns)
        self.patterns = [compile_pattern(p) for p in patterns]

    def split(self, argv: Sequence[str]) -> tuple[list[str], list[str]] | None:
        count = len(self.patterns)
        if count == 0 or len(argv) <= count:
            return None
        for pattern, value in zip(self.patterns, argv):
            if _has_dotdot(value) or not pattern.fullmatch(value):
                return None
        return list(argv[1:count]), list(argv[count:])


FILTER_CLASSES: dict[str, type[CommandFilter]] = {
    cls.__name__: cls
    for cls in (
        CommandFilter, RegExpFilter, PathFilter, KillFilter, ReadFileFilter,
        IpFilter, IpObjectFilter, EnvFilter, ChainingFilter, IpNetnsExecFilter, ChainingRegExpFilter,
    )
}


def resolve_executable(exec_path: str, exec_dirs: Sequence[str]) -> tuple[str | None, str]:
    """The path to execute for a filter's exec_path, or (None, why not).

    Absolute paths are used as they are; bare names are looked up in
    exec_dirs in order. Names with a directory part but no leading `/` are
    never resolved (no cwd-relative lookups). The file must be an executable
    regular file whose real path only root can write.
    """
    if os.path.isabs(exec_path):
        if _has_dotdot(exec_path):
            return None, f"{exec_path} contains '..'"
        candidates = [exec_path]
    elif "/" in exec_path or exec_path in ("", ".", ".."):
        return None, f"{exec_path!r} is neither absolute nor a bare command name"
    else:
        candidates = [os.path.join(directory, exec_path) for directory in exec_dirs]
    reason = f"not found in exec_dirs ({', '.join(exec_dirs) or 'empty'})"
    check_owner = os.geteuid() == 0
    for candidate in candidates:
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode) or not os.access(candidate, os.X_OK):
            reason = f"{candidate} is not an executable file"
            continue
        # Symlinks are fine as long as what they point to is root's: `st`
        # describes the final file; realpath is only needed for the message.
        if check_owner and untrusted_reason(candidate, st):
            reason = untrusted_reason(os.path.realpath(candidate), st) or ""
            continue
        return candidate, ""
    return None, reason


def match_command(
    filters: Sequence[CommandFilter], argv: Sequence[str], exec_dirs: Sequence[str]
) -> Match:
    """Find the first filter allowing argv and what exactly to run.

    Raises NotAllowed when no filter matches, ExecutableNotFound when the
    only matching filters name executables that are not installed.
    """
    argv = list(argv)
    if not argv:
        raise NotAllowed(argv, "empty command")
    if any("\0" in word for word in argv):
        raise NotAllowed(argv, "NUL byte in an argument")
    missing: ExecutableNotFound | None = None
    for candidate in filters:
        try:
            found = _match_one(candidate, argv, filters, exec_dirs)
        except ExecutableNotFound as exc:
            missing = missing or exc
            continue
        if found is not None:
            return found
    if missing is not None:
        raise missing
    raise NotAllowed(argv)


def _match_one(
    candidate: CommandFilter,
    argv: list[str],
    filters: Sequence[CommandFilter],
    exec_dirs: Sequence[str],
) -> Match | None:
    if isinstance(candidate, ChainingFilter):
        parts = candidate.split(argv)
        if parts is None:
            return None
        outer_args, inner_argv = parts
        # Only leaf filters with the same run_as may allow the inner command,
        # so a root chain cannot reach a filter meant for another user and
        # chains cannot nest.
        leaves = [f for f in filters if not isinstance(f, ChainingFilter) and f.run_as == candidate.run_as]
        try:
            inner = match_command(leaves, inner_argv, exec_dirs)
        except (NotAllowed, ExecutableNotFound):
            return None
        resolved, reason = resolve_executable(candidate.exec_path, exec_dirs)
        if resolved is None:
            raise ExecutableNotFound(candidate.exec_path, candidate.name, reason)
        return Match(
            filter_name=f"{candidate.name} > {inner.filter_name}",
            command=[resolved, *outer_args, *inner.command],
            env=inner.env,
            run_as=candidate.run_as,
        )
    plan = candidate.plan(argv, exec_dirs)
    if plan is None:
        return None
    resolved, reason = resolve_executable(plan.exec_path, exec_dirs)
    if resolved is None:
        raise ExecutableNotFound(plan.exec_path, candidate.name, reason)
    return Match(candidate.name, [resolved, *plan.args], dict(plan.env), candidate.run_as)
