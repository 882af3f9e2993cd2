"""Who is on the other end of a UNIX socket, as the kernel says, and may they use the daemon.

No shared secret, no challenge: SO_PEERCRED gives the peer's pid, uid and
gid at connect time (and, read by the client, who listens), SO_PEERGROUPS
its supplementary groups. Root is always allowed; everyone else needs a
uid in `daemon_allowed_users` or a group in `daemon_allowed_groups`.
"""

from __future__ import annotations

import socket
import struct

from isthmus.privileged.config import RootwrapConfig

_PEERCRED = struct.Struct("3i")
_SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)


class Caller:
    """Who is on the other end of a connection, as the kernel says."""

    __slots__ = ("pid", "uid", "gid")

    def __init__(self, pid: int, uid: int, gid: int) -> None:
        self.pid, self.uid, self.gid = pid, uid, gid


def peer_credentials(conn: socket.socket) -> Caller:
    """The pid, uid and gid of the process at the other end of `conn` (SO_PEERCRED)."""
    pid, uid, gid = _PEERCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
    return Caller(pid, uid, gid)


def is_allowed(conn: socket.socket, caller: Caller, config: RootwrapConfig) -> bool:
    """True if `caller` may use the daemon; supplementary groups are looked up only when needed."""
    return (
        caller.uid == 0
        or caller.uid in config.daemon_allowed_uids
        or caller.gid in config.daemon_allowed_gids
        or bool(config.daemon_allowed_gids and _peer_groups(conn, caller) & config.daemon_allowed_gids)
    )


def _peer_groups(conn: socket.socket, caller: Caller) -> set[int]:
    """Supplementary groups of the peer at connect time (SO_PEERGROUPS)."""
    try:
        raw = conn.getsockopt(socket.SOL_SOCKET, _SO_PEERGROUPS, 1024)
        return {gid for (gid,) in struct.iter_unpack("I", raw)}
    except OSError:
        # Kernels before 4.13, or more than 256 groups: ask the group database.
        import grp
        import pwd

        try:
            user = pwd.getpwuid(caller.uid).pw_name
        except KeyError:
            return set()
        return {group.gr_gid for group in grp.getgrall() if user in group.gr_mem}
