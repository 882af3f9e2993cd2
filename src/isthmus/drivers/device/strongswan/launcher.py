"""``isthmus-charon``: start or stop one router's charon; run as root (via the privileged helper).

    isthmus-charon start ROUTER_ID [--netns NETNS] [--libipsec] [--vici-owner USER]
    isthmus-charon stop ROUTER_ID

The agent that asks is not trusted: it names a router (a canonical UUID) and a
network namespace, nothing else. Every file charon reads or writes lives in
``/run/isthmus/charon/<router_id>/``, which only this command writes: it checks
that every directory from ``/`` down is owned by root and not writable by group
or others, opens each one relative to its parent with ``O_NOFOLLOW``, renders
``strongswan.conf`` from the template beside this module, and creates
``charon.log`` afresh at each start (the tail it prints on failure is only what
it and charon wrote).

charon writes its pid file to the compiled-in ``/var/run/charon.pid``, so two
charons on one host would refuse each other. Each charon therefore runs in a
mount namespace of its own where ``/run`` is its router directory, and in the
router's network namespace. ``start`` prints the VICI socket path once charon
answers (an already running charon is adopted, so an agent restart drops no
tunnel); ``--vici-owner`` hands the socket to the agent's user, which the
operator's filter line pins. ``stop`` signals only a charon whose ``/run`` is
that router's directory, then removes the directory.

Two agents on one machine (tests, or a router that failed over to another agent
whose namespaces share the host) may each have a namespace for the same router,
while ``/run/isthmus/charon/<router_id>`` is one: so ``start --netns NS`` adopts
a running charon only if it runs in NS (another one is stopped and replaced: the
agent asking serves the router now), and ``stop --netns NS`` stops it only if it
runs in NS (an agent removing its leftovers never stops the charon of the agent
that took the router over); without NS existing, ``stop --netns`` leaves it.

``start`` and ``stop`` of one router hold an exclusive ``flock`` on
``/run/isthmus/charon/<router_id>.lock`` (root's, 0600) from their first look
at the directory to their last change: a ``stop`` running while a ``start``
spawns charon removed the directory under the new charon, which then ran on
out of every later ``stop``'s reach. ``stop`` removes the lock file too (while
holding it), so a waiter checks that the file it locked is still the one named.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import os
import pwd
import re
import select
import shutil
import signal
import socket
import string
import sys
import time
from pathlib import Path
from typing import Iterator

from isthmus.privileged import syscalls

CHARON = "/usr/lib/ipsec/charon"
RUN_DIR = "/run/isthmus/charon"
CONF, LOG, OLD_LOG, PID, VICI = (
    "strongswan.conf", "charon.log", "charon.log.1", "charon.pid", "charon.vici")
TEMPLATE = Path(__file__).with_name("strongswan.conf.template")
ROUTER_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NETNS = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}")
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
LOG_TAIL_BYTES = 2000
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class LauncherError(Exception):
    """A refused argument or an unsafe directory: printed, exit status 2."""


def router_dir(router_id: str) -> str:
    """The root-owned directory of one router's charon (its ``/run``)."""
    if not ROUTER_ID.fullmatch(router_id):
        raise LauncherError(f"router id {router_id!r} is not a canonical UUID "
                            "(lowercase, 8-4-4-4-12 hex digits)")
    return f"{RUN_DIR}/{router_id}"


def vici_socket(router_id: str) -> str:
    """Where the agent finds the router's VICI socket (68 bytes, under the 107 of sun_path)."""
    return f"{router_dir(router_id)}/{VICI}"


def render_conf(libipsec: bool) -> str:
    """strongswan.conf for one router: only the plugins it needs, VICI at ``/run/charon.vici``."""
    template = string.Template(TEMPLATE.read_text())
    return template.substitute(kernel_ipsec="kernel-libipsec " if libipsec else "")


def vici_answers(path: str) -> bool:
    """Whether something accepts connections on the VICI socket at ``path``."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            sock.connect(path)
        return True
    except OSError:
        return False


# -- directories only root can write ---------------------------------------------------

def _check_root_only(fd: int, path: str) -> None:
    st = os.fstat(fd)
    if st.st_uid != 0 or st.st_mode & 0o022:
        raise LauncherError(
            f"{path} is owned by uid {st.st_uid} with mode {st.st_mode & 0o7777:04o}: expected "
            "a directory owned by root and not writable by group or others, since charon "
            f"runs as root; fix: chown root {path} && chmod go-w {path}")


def open_root_dir(path: str, create: bool) -> int | None:
    """A descriptor of ``path`` if every directory from ``/`` is root's alone (else LauncherError).

    Each component is opened relative to its parent with ``O_NOFOLLOW``, so a
    symlink anywhere is refused; missing ones are created (0755) when
    ``create``, otherwise the answer is None.
    """
    fd = os.open("/", _DIR_FLAGS)
    current = ""
    try:
        _check_root_only(fd, "/")
        for part in path.strip("/").split("/"):
            current = f"{current}/{part}"
            made = False
            if create:
                try:
                    os.mkdir(part, 0o700, dir_fd=fd)
                    made = True
                except FileExistsError:
                    pass
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                os.close(fd)
                return None
            except OSError as err:
                if err.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                raise LauncherError(f"{current} is not a plain directory ({err.strerror}): "
                                    "remove it; isthmus-charon creates it") from None
            os.close(fd)
            fd = child
            if made:
                os.fchmod(fd, 0o755)   # searchable, so the agent reaches its VICI socket
            _check_root_only(fd, current)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _unlink(dir_fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


def _write_conf(dir_fd: int, libipsec: bool) -> None:
    """Replace strongswan.conf atomically with a file this command created."""
    new = CONF + ".new"
    _unlink(dir_fd, new)
    fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o644, dir_fd=dir_fd)
    with os.fdopen(fd, "w") as f:
        f.write(render_conf(libipsec))
    os.replace(new, CONF, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def _new_log(dir_fd: int) -> int:
    """A fresh charon.log (the previous one kept as charon.log.1), opened for appending."""
    try:
        os.replace(LOG, OLD_LOG, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    return os.open(LOG, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                   | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)


# -- the charon process ------------------------------------------------------------------

def _exec_charon(path: str, dir_fd: int, log_fd: int, netns: str | None) -> None:
    """In the grandchild: detach, enter the namespaces, become charon."""
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    if netns:
        ns_fd = os.open(f"/run/netns/{netns}", os.O_RDONLY | os.O_NOFOLLOW)
        syscalls.setns(ns_fd, syscalls.CLONE_NEWNET, f"entering network namespace {netns}")
        os.close(ns_fd)
    syscalls.unshare(syscalls.CLONE_NEWNS, "creating a mount namespace")
    syscalls.mount("none", "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE, "making / private")
    syscalls.mount(path, "/run", None, syscalls.MS_BIND, f"binding {path} over /run")
    mounted, checked = os.stat("/run"), os.fstat(dir_fd)
    if (mounted.st_dev, mounted.st_ino) != (checked.st_dev, checked.st_ino):
        raise OSError(f"{path} changed between its check and its mount")
    os.closerange(3, 65536)
    os.execve(CHARON, [CHARON], {"STRONGSWAN_CONF": f"/run/{CONF}",
                                 "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})


def _spawn(path: str, dir_fd: int, log_fd: int, netns: str | None) -> None:
    """Start charon detached (double fork), its errors before exec going to its log."""
    child = os.fork()
    if child == 0:
        try:
            if os.fork() == 0:
                try:
                    _exec_charon(path, dir_fd, log_fd, netns)
                except BaseException as err:   # nobody but the log (fd 2) sees the grandchild
                    os.write(2, f"isthmus-charon: {err}\n".encode())
        finally:
            os._exit(0)
    os.waitpid(child, 0)


def _is_routers_charon(pid: int, dir_fd: int) -> bool:
    """True if ``pid`` is charon and its ``/run`` is this router's directory.

    The pid file could be stale and the pid since reused, even by another
    router's charon: the mount, unlike the pid, cannot be stale.
    """
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        run = os.stat(f"/proc/{pid}/root/run")
    except OSError:
        return False
    own = os.fstat(dir_fd)
    return (exe in (CHARON, f"{CHARON} (deleted)")
            and (run.st_dev, run.st_ino) == (own.st_dev, own.st_ino))


def _wait_exit(pidfd: int, timeout_s: float) -> bool:
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(int(timeout_s * 1000)))


def _stop_charon(dir_fd: int) -> None:
    """Stop the router's charon named by its pid file, if that is running."""
    try:
        fd = os.open(PID, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        with os.fdopen(fd) as f:
            pid = int(f.read(32).strip())
        pidfd = os.pidfd_open(pid)
    except (OSError, ValueError):
        return
    try:
        # Checked through the pidfd's process: a pid reused after this check gets no signal.
        if _is_routers_charon(pid, dir_fd):
            signal.pidfd_send_signal(pidfd, signal.SIGTERM)
            if not _wait_exit(pidfd, STOP_TIMEOUT_S):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                _wait_exit(pidfd, STOP_TIMEOUT_S)
    except ProcessLookupError:
        pass   # it exited meanwhile
    finally:
        os.close(pidfd)


# -- one command per router at a time ----------------------------------------------------

def _lock_name(router_id: str) -> str:
    return f"{router_id}.lock"


@contextlib.contextmanager
def _router_lock(base_fd: int, router_id: str) -> Iterator[None]:
    """Hold the router's lock file in ``RUN_DIR`` (``base_fd``) exclusively.

    Only root can open the file, so the agent cannot hold it to block a stop.
    ``stop`` unlinks it while holding it: a waiter that then gets the lock of
    an unlinked file opens the name again.
    """
    name = _lock_name(router_id)
    while True:
        fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=base_fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                named = os.stat(name, dir_fd=base_fd, follow_symlinks=False)
            except FileNotFoundError:
                named = None
            held = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        if named is not None and (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino):
            break
        os.close(fd)
    try:
        yield
    finally:
        os.close(fd)   # releases the lock


# -- commands --------------------------------------------------------------------------------

def _user_id(name: str) -> int:
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        raise LauncherError(f"--vici-owner {name!r}: no such user; expected the user the "
                            "agent runs as") from None


def _hand_over(dir_fd: int, owner_uid: int | None) -> None:
    """Let the agent's user use the VICI socket (charon creates it root:root 0770)."""
    if owner_uid is not None:
        os.chown(VICI, owner_uid, -1, dir_fd=dir_fd, follow_symlinks=False)


def start(router_id: str, netns: str | None, libipsec: bool, vici_owner: str | None) -> int:
    """Start (or adopt) the router's charon; prints its VICI socket path."""
    path = router_dir(router_id)
    owner_uid = _user_id(vici_owner) if vici_owner else None
    if netns is not None:
        if not NETNS.fullmatch(netns):
            raise LauncherError(f"network namespace {netns!r}: expected letters, digits, "
                                "'_', '.', '-', not starting with '.' or '-'")
        if not os.path.exists(f"/run/netns/{netns}"):
            raise LauncherError(f"network namespace {netns} does not exist")
    base_fd = open_root_dir(RUN_DIR, create=True)
    assert base_fd is not None
    try:
        with _router_lock(base_fd, router_id):
            return _start_locked(router_id, path, netns, libipsec, owner_uid)
    finally:
        os.close(base_fd)


def _start_locked(router_id: str, path: str, netns: str | None, libipsec: bool,
                  owner_uid: int | None) -> int:
    dir_fd = open_root_dir(path, create=True)
    assert dir_fd is not None
    try:
        vici = vici_socket(router_id)
        if not vici_answers(vici) or (netns is not None and
                                      _runs_in_netns(dir_fd, netns) is False):
            _stop_charon(dir_fd)   # one that stopped answering
            for stale in (PID, VICI):
                _unlink(dir_fd, stale)
            _write_conf(dir_fd, libipsec)
            log_fd = _new_log(dir_fd)
            try:
                _spawn(path, dir_fd, log_fd, netns)
                deadline = time.monotonic() + START_TIMEOUT_S
                while not vici_answers(vici):
                    if time.monotonic() > deadline:
                        size = os.fstat(log_fd).st_size
                        tail = os.pread(log_fd, LOG_TAIL_BYTES, max(0, size - LOG_TAIL_BYTES))
                        print(f"isthmus-charon: charon did not open {vici} within "
                              f"{START_TIMEOUT_S}s; end of {path}/{LOG}:\n"
                              f"{tail.decode(errors='replace')}", file=sys.stderr)
                        return 1
                    time.sleep(0.02)
            finally:
                os.close(log_fd)
        _hand_over(dir_fd, owner_uid)
    finally:
        os.close(dir_fd)
    print(vici)
    return 0


def _runs_in_netns(dir_fd: int, netns: str) -> bool | None:
    """Whether the charon named by the pid file runs in network namespace ``netns``;
    ``None`` when no charon runs (no pid file, or a dead pid)."""
    try:
        fd = os.open(PID, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        with os.fdopen(fd) as f:
            pid = int(f.read(32).strip())
        theirs = os.stat(f"/proc/{pid}/ns/net")
    except (OSError, ValueError):
        return None
    try:
        ours = os.stat(f"/run/netns/{netns}")
    except OSError:
        return False   # the namespace is gone: whatever runs is not in it
    return (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino)


def stop(router_id: str, netns: str | None = None) -> int:
    """Stop the router's charon (if running) and remove its directory and lock file;
    with ``netns``, only a charon that runs in that network namespace (or none)."""
    path = router_dir(router_id)
    if netns is not None and not NETNS.fullmatch(netns):
        raise LauncherError(f"network namespace {netns!r}: expected letters, digits, "
                            "'_', '.', '-', not starting with '.' or '-'")
    base_fd = open_root_dir(RUN_DIR, create=False)
    if base_fd is None:
        return 0
    try:
        with _router_lock(base_fd, router_id):
            dir_fd = open_root_dir(path, create=False)
            if dir_fd is not None and netns is not None and \
                    _runs_in_netns(dir_fd, netns) is False:
                os.close(dir_fd)
                print(f"isthmus-charon: the charon of router {router_id} runs outside "
                      f"{netns} (another agent's): left running")
                return 0
            if dir_fd is not None:
                try:
                    _stop_charon(dir_fd)
                finally:
                    os.close(dir_fd)
                shutil.rmtree(router_id, dir_fd=base_fd)
            _unlink(base_fd, _lock_name(router_id))
    finally:
        os.close(base_fd)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isthmus-charon", allow_abbrev=False,
                                     description="Start or stop one router's charon (as root).")
    commands = parser.add_subparsers(dest="command", required=True)
    starting = commands.add_parser(
        "start", allow_abbrev=False,
        help="start (or adopt) the router's charon; prints its VICI socket path")
    starting.add_argument("router_id", help="the router's id, a canonical UUID")
    starting.add_argument("--netns", help="network namespace (default: the host's)")
    starting.add_argument("--libipsec", action="store_true",
                          help="ESP in userspace (kernel-libipsec) instead of the kernel's XFRM")
    starting.add_argument("--vici-owner", metavar="USER",
                          help="user the VICI socket is handed to (the agent's)")
    stopping = commands.add_parser("stop", help="stop the router's charon, remove its files")
    stopping.add_argument("router_id", help="the router's id, a canonical UUID")
    stopping.add_argument("--netns", help="stop it only if it runs in this network namespace")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``isthmus-charon start|stop``: run as root through the privileged helper's filters."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "start":
            return start(args.router_id, args.netns, args.libipsec, args.vici_owner)
        return stop(args.router_id, args.netns)
    except LauncherError as err:
        print(f"isthmus-charon: {err}", file=sys.stderr)
        return 2
    except OSError as err:   # e.g. not run as root
        print(f"isthmus-charon: {args.command} {args.router_id}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
