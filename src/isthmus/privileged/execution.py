"""Running an allowed command: no shell, clean environment, optional stdin, timeout.

Root commands never use a `preexec_fn` (it forces a full fork and runs
Python in the child of a threaded process: +2.5 ms and unsafe). A lone
command starts through `os.posix_spawn` (vfork-style, ~0.1 ms cheaper than
`subprocess.Popen`); when other commands are running at the same time it
starts through `subprocess.Popen`, whose vfork path releases the GIL while
the child execs, where `os.posix_spawn` holds it: 8 threads spawning `true`
reach ~2500 calls/s with Popen and stay at ~1600 with posix_spawn here.
Commands with another `run_as` user go through `subprocess.Popen` with
`user`/`group`/`extra_groups=[]`, which switches uid, gid and supplementary
groups in C (oslo.rootwrap only calls setuid, leaving gid 0 and root's
groups). Every command gets its own session so a timeout, or its client
going away, can kill it and its children as a group.

What runs is checked from / down right before it starts
(`check_executables`): a directory on the way that someone else can write
would let them swap the file after the filters resolved it.
"""

from __future__ import annotations

import os
import select
import time

# `signal` imports `enum`, which costs the CLI ~4 ms of start-up; the C
# module underneath has the same constants and functions.
import _signal as signal
from isthmus.privileged.exceptions import ExecutableNotFound
from isthmus.privileged.filters import Match
from isthmus.privileged.trust import untrusted_path_reason

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (CLI start-up)
if TYPE_CHECKING:
    from typing import Collection, Mapping, Sequence

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MAX_OUTPUT_BYTES = 32 * 1024 * 1024
_CHUNK = 256 * 1024
_KILL_GRACE_S = 2.0
_DEVNULL: int | None = None
# The peer closed or shut down its end (POLLHUP/POLLERR are always reported).
_CLIENT_GONE = select.POLLRDHUP


class Outcome:
    """What happened to one command. returncode is -N when killed by signal N.

    `client_gone`: the caller disconnected while it ran, so it was killed.
    """

    __slots__ = ("returncode", "stdout", "stderr", "timed_out", "output_truncated", "client_gone")

    def __init__(
        self,
        returncode: int,
        stdout: bytes,
        stderr: bytes,
        timed_out: bool = False,
        output_truncated: bool = False,
        client_gone: bool = False,
    ) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr
        self.timed_out, self.output_truncated, self.client_gone = timed_out, output_truncated, client_gone

    def __repr__(self) -> str:
        return (f"Outcome(returncode={self.returncode}, stdout={self.stdout[:60]!r}, "
                f"stderr={self.stderr[:60]!r}, timed_out={self.timed_out})")


def child_environment(exec_dirs: Sequence[str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment a command gets: nothing inherited from the caller.

    Variables allowed by an EnvFilter come on top.
    """
    env = {"PATH": ":".join(exec_dirs) or DEFAULT_PATH, "LANG": "C.UTF-8"}
    if extra:
        env.update(extra)
    return env


def check_executables(match: Match, exec_dirs: Collection[str], filter_paths: Collection[str]) -> None:
    """Refuse the match unless every executable in it is root's from / down.

    The executables are the command itself and, for chaining filters (`ip
    netns exec NS CMD`), the inner command: an absolute word whose
    directory is one of exec_dirs or that a filter names as its executable.
    Raises ExecutableNotFound naming the path and the component at fault.
    """
    command = match.command
    for index, word in enumerate(command):
        if index and not (word.startswith("/") and (word in filter_paths or os.path.dirname(word) in exec_dirs)):
            continue
        reason = untrusted_path_reason(word)
        if reason is not None:
            raise ExecutableNotFound(word, match.filter_name, reason)


def run(
    match: Match,
    env: Mapping[str, str],
    stdin: bytes | None = None,
    timeout_s: float | None = None,
    *,
    concurrent: bool = False,
    client_fd: int | None = None,
) -> Outcome:
    """Run `match.command` and collect its output; never raises for the command's own failure.

    `concurrent` says other commands are being started at the same time
    (see the module docstring for why that changes how we spawn). When
    `client_fd` (the caller's socket) hangs up, the command is killed.
    """
    command = match.command
    user = None
    if match.run_as != "root":
        import pwd

        user = pwd.getpwnam(match.run_as)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    in_r, in_w = os.pipe() if stdin is not None else (_devnull(), -1)
    try:
        if user is None and not concurrent:
            pid = os.posix_spawn(
                command[0],
                command,
                env,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, in_r, 0),
                    (os.POSIX_SPAWN_DUP2, out_w, 1),
                    (os.POSIX_SPAWN_DUP2, err_w, 2),
                ],
                setsid=True,
                setsigmask=(),
                # Python ignores SIGPIPE and SIGXFSZ; commands expect the defaults.
                setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
            )
            reap = lambda: os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])  # noqa: E731
        else:
            import subprocess

            # user/group/extra_groups switch uid, gid and groups in C, no preexec_fn.
            identity = {} if user is None else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
            process = subprocess.Popen(
                command, stdin=in_r, stdout=out_w, stderr=err_w, env=env, cwd="/",
                close_fds=True, start_new_session=True,  # restore_signals resets SIGPIPE/SIGXFSZ
                **identity,
            )
            pid, reap = process.pid, process.wait
    except BaseException:
        for fd in (out_r, err_r, in_w):
            if fd >= 0:
                os.close(fd)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
        if in_w >= 0:
            os.close(in_r)
    return _collect(pid, reap, out_r, err_r, in_w, stdin or b"", timeout_s, client_fd)


def _devnull() -> int:
    global _DEVNULL
    if _DEVNULL is None:
        _DEVNULL = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    return _DEVNULL


def _collect(
    pid: int,
    reap,
    out_r: int,
    err_r: int,
    in_w: int,
    stdin: bytes,
    timeout_s: float | None,
    client_fd: int | None,
) -> Outcome:
    """Feed stdin, drain stdout/stderr, enforce the deadline, watch the client, reap the child."""
    buffers: dict[int, list[bytes]] = {out_r: [], err_r: []}
    poller = select.poll()
    poller.register(out_r, select.POLLIN)
    poller.register(err_r, select.POLLIN)
    if client_fd is not None:
        poller.register(client_fd, _CLIENT_GONE)
    open_fds = {out_r, err_r}
    view = memoryview(stdin)
    if in_w >= 0:
        if view:
            os.set_blocking(in_w, False)
            poller.register(in_w, select.POLLOUT)
            open_fds.add(in_w)
        else:
            os.close(in_w)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    timed_out = truncated = client_gone = False
    total = 0

    def kill() -> None:
        nonlocal deadline
        _kill_group(pid)
        deadline = time.monotonic() + _KILL_GRACE_S

    try:
        while open_fds:
            wait_ms = None
            if deadline is not None:
                wait_ms = max(0, int((deadline - time.monotonic()) * 1000) + 1)
            events = poller.poll(wait_ms)
            if not events and deadline is not None and time.monotonic() >= deadline:
                if timed_out or truncated or client_gone:
                    # Something that left the process group still holds the
                    # pipes; stop waiting for it.
                    break
                timed_out = True
                kill()
                continue
            for fd, event in events:
                if fd == client_fd:
                    # Nobody is left to read the answer: a command that would
                    # run on (`ip monitor`) must not hold its slot forever.
                    poller.unregister(client_fd)
                    if not (timed_out or truncated):
                        client_gone = True
                        kill()
                    continue
                if fd == in_w:
                    try:
                        written = os.write(in_w, view[:_CHUNK])
                        view = view[written:]
                    except BrokenPipeError:
                        view = view[:0]
                    if not view or event & (select.POLLERR | select.POLLHUP):
                        poller.unregister(in_w)
                        os.close(in_w)
                        open_fds.discard(in_w)
                    continue
                chunk = os.read(fd, _CHUNK)
                if not chunk:
                    poller.unregister(fd)
                    open_fds.discard(fd)
                    continue
                total += len(chunk)
                if total > MAX_OUTPUT_BYTES and not truncated:
                    truncated = True
                    kill()
                if not truncated:
                    buffers[fd].append(chunk)
    except BaseException:
        _kill_group(pid)  # never leave a command running unwatched
        raise
    finally:
        for fd in open_fds:
            os.close(fd)
        for fd in (out_r, err_r):
            if fd not in open_fds:
                os.close(fd)
        returncode = reap()
    return Outcome(
        returncode,
        b"".join(buffers[out_r]),
        b"".join(buffers[err_r]),
        timed_out,
        truncated,
        client_gone,
    )


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_with_inherited_stdio(match: Match, env: Mapping[str, str]) -> int:
    """Run a command on our own stdin/stdout/stderr; the exit code a shell expects.

    Used by the CLI. A command killed by signal N gives 128+N, as
    oslo.rootwrap's CLI reports it.
    """
    # Like system(3): the terminal's Ctrl-C is for the command, not for us.
    previous = [signal.signal(number, signal.SIG_IGN) for number in (signal.SIGINT, signal.SIGQUIT)]
    try:
        if match.run_as == "root":
            pid = os.posix_spawn(
                match.command[0],
                match.command,
                env,
                setsigmask=(),
                setsigdef=(signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGQUIT),
            )
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
        else:
            import pwd
            import subprocess

            user = pwd.getpwnam(match.run_as)
            code = subprocess.call(
                match.command, env=dict(env), close_fds=True,
                user=user.pw_uid, group=user.pw_gid, extra_groups=[],
            )
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGQUIT, previous[1])
    return 128 - code if code < 0 else code


def limit_open_files(limit: int) -> None:
    """Lower the soft RLIMIT_NOFILE to `limit` (never raise it), as rootwrap.conf's rlimit_nofile.

    Descriptors at or above the new limit are closed first, as
    oslo.rootwrap does; commands inherit the lowered limit.
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft <= limit:
        return
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= limit:
            try:
                os.close(fd)
            except OSError:
                pass
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
