"""Is a file safe to trust? Ownership and mode checks.

sudo only protects the helper if everything it reads or runs is root's:
a config file, filter file, exec directory or executable that another user
can write turns "allowed to run the helper" into "root". oslo.rootwrap
checks none of this; we refuse such files instead.
"""

from __future__ import annotations

import os
import stat


def trusted_owners() -> frozenset[int]:
    """uids allowed to own trusted files: root and the user running us."""
    return frozenset({0, os.geteuid()})


def untrusted_reason(path: str, st: os.stat_result | None = None) -> str | None:
    """Why `path` must not be trusted, or None if it is fine.

    A file is trusted when it is owned by root (or by the user running the
    helper, so unprivileged development works) and is not writable by group
    or others. The check is on the path as given; callers pass real paths
    when symlinks matter.
    """
    if st is None:
        try:
            st = os.stat(path)
        except OSError as exc:
            return f"cannot stat {path}: {exc.strerror}"
    if st.st_uid not in trusted_owners():
        return f"{path} is owned by uid {st.st_uid}, expected root"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return (
            f"{path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):o}); "
            f"run: chmod go-w {path}"
        )
    return None
