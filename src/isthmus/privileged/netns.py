"""Network namespaces without spawning `ip`: list, create, delete in-process.

Same on-disk contract as iproute2 (`ip netns`): a namespace NAME is a bind
mount of a network namespace on `/run/netns/NAME`, and `/run/netns` is a
shared mount so the namespaces show up in other mount namespaces. Anything
created here is usable with `ip netns exec NAME ...` and vice versa.

These functions need root (CAP_SYS_ADMIN). Unprivileged callers reach them
through the daemon (`Client.list_netns()` etc.), which authorizes each call
exactly as it would authorize `ip netns list|add|delete NAME`, so the
filters stay the one place that says what is allowed.
"""

from __future__ import annotations

import errno
import os
import threading

from isthmus.privileged import syscalls
from isthmus.privileged.exceptions import PrivilegedError
from isthmus.privileged.filters import valid_netns_name
from isthmus.privileged.protocol import NetnsOp

NETNS_RUN_DIR = "/run/netns"


class NetnsError(PrivilegedError):
    """A namespace operation failed (exists already, missing, no permission)."""


def list_namespaces(run_dir: str = NETNS_RUN_DIR) -> list[str]:
    """Names of the namespaces under run_dir, sorted; [] if there are none."""
    try:
        names = os.listdir(run_dir)
    except FileNotFoundError:
        return []
    return sorted(name for name in names if valid_netns_name(name))


def create_namespace(name: str, run_dir: str = NETNS_RUN_DIR) -> None:
    """Create a new, empty network namespace NAME (like `ip netns add NAME`)."""
    _check_name(name)
    os.makedirs(run_dir, mode=0o755, exist_ok=True)
    _make_shared_mount(run_dir)
    path = os.path.join(run_dir, name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0)
    except FileExistsError:
        raise NetnsError(f"network namespace {name!r} already exists ({path})") from None
    except OSError as exc:
        raise NetnsError(f"cannot create {path}: {exc.strerror}") from None
    os.close(fd)

    # unshare(CLONE_NEWNET) moves only the calling thread, so a throwaway
    # thread creates the namespace and pins it with a bind mount; the rest
    # of the process never leaves its namespace.
    errors: list[str] = []

    def pin() -> None:
        try:
            syscalls.unshare(syscalls.CLONE_NEWNET, "unshare(CLONE_NEWNET)")
            source = f"/proc/self/task/{threading.get_native_id()}/ns/net"
            syscalls.mount(source, path, "none", syscalls.MS_BIND, f"bind mount on {path}")
        except OSError as exc:
            errors.append(exc.strerror)

    worker = threading.Thread(target=pin, name=f"netns-create-{name}")
    worker.start()
    worker.join()
    if errors:
        try:
            os.unlink(path)
        except OSError:
            pass
        raise NetnsError(f"cannot create network namespace {name!r}: {errors[0]}")


def delete_namespace(name: str, run_dir: str = NETNS_RUN_DIR) -> None:
    """Remove namespace NAME (like `ip netns delete NAME`)."""
    _check_name(name)
    path = os.path.join(run_dir, name)
    if not os.path.exists(path):
        raise NetnsError(f"network namespace {name!r} does not exist ({path})")
    # Lazy unmount, as ip does: processes still inside keep it alive.
    try:
        syscalls.umount2(path, syscalls.MNT_DETACH, f"unmounting {path}")
    except OSError:
        pass  # not mounted (a leftover file): unlinking is all there is to do
    try:
        os.unlink(path)
    except OSError as exc:
        raise NetnsError(f"cannot remove {path}: {exc.strerror}") from None


def perform(op: NetnsOp, name: str) -> bytes:
    """Run one NETNS request of the daemon; its output as `ip netns` prints it. NetnsError on failure."""
    if op == NetnsOp.LIST:
        return "".join(f"{found}\n" for found in list_namespaces()).encode()
    if op == NetnsOp.ADD:
        create_namespace(name)
    else:
        delete_namespace(name)
    return b""


def equivalent_command(op: NetnsOp, name: str) -> list[str]:
    """The `ip netns` command a NETNS request is authorized and audited as."""
    return ["ip", "netns", op.name.lower()] + ([name] if op != NetnsOp.LIST else [])


def _check_name(name: str) -> None:
    if not valid_netns_name(name):
        raise NetnsError(
            f"invalid network namespace name {name!r}: expected 1-255 characters, "
            "no '/', not '.' or '..', not starting with '-'"
        )


def _make_shared_mount(run_dir: str) -> None:
    """Make run_dir a shared mount point, bind-mounting it on itself if needed."""
    shared = f"cannot make {run_dir} a shared mount"
    try:
        syscalls.mount("", run_dir, "none", syscalls.MS_SHARED | syscalls.MS_REC, shared)
        return
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: not a mount point yet
            raise NetnsError(exc.strerror) from None
    try:
        syscalls.mount(run_dir, run_dir, "none", syscalls.MS_BIND | syscalls.MS_REC,
                       f"cannot bind-mount {run_dir} on itself")
        syscalls.mount("", run_dir, "none", syscalls.MS_SHARED | syscalls.MS_REC, shared)
    except OSError as exc:
        raise NetnsError(exc.strerror) from None
