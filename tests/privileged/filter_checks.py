"""What match_command asks one filter, for tests of single filters."""

from __future__ import annotations

from typing import Sequence

from isthmus.privileged.filters import ChainingFilter, CommandFilter


def allows(filt: CommandFilter, argv: Sequence[str], exec_dirs: Sequence[str] = ()) -> bool:
    """True if `filt` accepts argv: a plan for a leaf filter, the right shape for a chaining one."""
    if not argv:
        return False
    if isinstance(filt, ChainingFilter):
        return filt.split(list(argv)) is not None
    return filt.plan(list(argv), exec_dirs) is not None
