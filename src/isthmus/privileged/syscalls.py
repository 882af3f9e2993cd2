"""The namespace system calls `os` lacks: unshare, setns, mount, umount2, through libc.

Shared by the daemon's namespace fast path (`netns`) and `isthmus-charon`
(which enters a router's network namespace and a mount namespace of its
own). `os.unshare` and `os.setns` arrive only in Python 3.12; mount has no
`os` function at all.

Why not pyroute2.netns, which we depend on (`benchmarks/netns.py`, on the
shared 2-core test VM, 2026-12-01): importing `pyroute2.netns` takes
417-434 ms against 72-88 ms for `isthmus.privileged.netns`, and creating
and deleting a namespace 5.8-12.7 ms against 0.9-1.1 ms, because
`pyroute2.netns.create` forks a child per namespace (from a threaded
daemon). Its fork-free path binds `/proc/self/ns/net`, which from any
thread but the main one is the main thread's namespace, not the new one;
`netns` pins the new namespace from a throwaway thread through
`/proc/self/task/TID/ns/net`. `isthmus-charon` also needs a mount
namespace and bind mounts, which pyroute2 does not offer.

Each call raises OSError(errno, "WHAT: strerror") naming what it was doing.
"""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_SHARED = 1 << 20
MNT_DETACH = 2

# The symbols of the running process, which include libc's.
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]


def unshare(flags: int, what: str) -> None:
    """Move the calling thread into new namespaces (`CLONE_NEW*` flags)."""
    _check(_libc.unshare(flags), what)


def setns(fd: int, nstype: int, what: str) -> None:
    """Move the calling thread into the namespace open as `fd`."""
    _check(_libc.setns(fd, nstype), what)


def mount(source: str, target: str, fstype: str | None, flags: int, what: str) -> None:
    """mount(2) with no data: bind mounts and propagation changes."""
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode() if fstype is not None else None,
                       flags, None), what)


def umount2(target: str, flags: int, what: str) -> None:
    """umount2(2), e.g. a lazy unmount with MNT_DETACH."""
    _check(_libc.umount2(target.encode(), flags), what)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
