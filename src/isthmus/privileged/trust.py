"""Is a file safe to trust? Ownership and mode checks, from / down.

sudo only protects the helper if everything it reads or runs is root's:
a config file, filter file, exec directory or executable that another user
can write turns "allowed to run the helper" into "root". oslo.rootwrap
checks none of this; we refuse such files instead. Checking the file alone
is not enough: whoever can write any directory on the way to it can rename
that directory away and put their own in its place after the check, so
`untrusted_path_reason` checks every component.
"""

from __future__ import annotations

import os
import stat

# Linux's own limit on symlinks followed while resolving one path.
_MAX_SYMLINKS = 40
_WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH


def trusted_owners() -> frozenset[int]:
    """uids allowed to own trusted files: root and the user running us."""
    return frozenset({0, os.geteuid()})


def untrusted_reason(path: str, st: os.stat_result | None = None) -> str | None:
    """Why the file itself at `path` must not be trusted, or None if it is fine.

    A file is trusted when it is owned by root (or by the user running the
    helper, so unprivileged development works) and is not writable by group
    or others. Only the last component is checked; `untrusted_path_reason`
    checks the directories above it too.
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


def untrusted_path_reason(path: str) -> str | None:
    """Why `path` must not be trusted, checking every component from / down; None if fine.

    The final file or directory must pass `untrusted_reason`. Every
    directory passed through must be owned by root and not writable by
    group or others, or be a sticky directory such as /tmp whose entry we
    use is root's (the sticky bit stops others renaming it). Symlinks are
    followed, but only ones read from a directory that already passed, so
    where they point was chosen by root. When this returns None, nobody but
    root can change what `path` names, so opening or executing it by name
    afterwards gets what was checked. The daemon calls this for every
    command it runs: a few lstat calls, cheaper than keeping a cache honest.
    """
    if not path.startswith("/"):
        return f"{path!r} is not an absolute path"
    owners = trusted_owners()
    pending = path.split("/")
    pending.reverse()
    current = ""  # stands for "/", so that current + "/" + name needs no special case
    root_st = st = os.lstat("/")
    links_followed = 0
    while pending:
        name = pending.pop()
        if not name or name == ".":
            continue
        # About to look inside `current`, a directory.
        shared = False
        if st.st_uid not in owners or st.st_mode & _WRITABLE_BY_OTHERS:
            if st.st_uid not in owners or not st.st_mode & stat.S_ISVTX:
                return _on_the_way(untrusted_reason(current or "/", st), current, path)
            shared = True
        if name == "..":
            # `current` holds no symlink, so its parent is the real parent,
            # already checked on the way down.
            current = current.rpartition("/")[0]
            st = os.lstat(current or "/")
            continue
        candidate = current + "/" + name
        directory_st = st
        try:
            st = os.lstat(candidate)
        except OSError as exc:
            return f"cannot stat {candidate}: {exc.strerror}"
        if shared and st.st_uid not in owners:
            return _on_the_way(
                f"{candidate} is owned by uid {st.st_uid} in the shared directory {current}, expected root",
                candidate, path,
            )
        if stat.S_ISLNK(st.st_mode):
            links_followed += 1
            if links_followed > _MAX_SYMLINKS:
                return f"too many levels of symbolic links in {path}"
            target = os.readlink(candidate)
            if target.startswith("/"):
                current, st = "", root_st
            else:
                st = directory_st
            pending.extend(reversed(target.split("/")))
            continue
        current = candidate
    return _on_the_way(untrusted_reason(current or "/", st), current or "/", path)


def _on_the_way(reason: str | None, component: str, path: str) -> str | None:
    if reason is None or component == path:
        return reason
    return f"{reason} (on the way to {path})"
