"""The builder's door to the privileged helper, counting reads and writes.

A read asks (``ip -j ... show``, ``sysctl -n``, ``iptables -S``, the namespace
list); a write changes something. The counters let a benchmark report calls per
router and let tests prove that re-syncing an unchanged router writes nothing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from isthmus.privileged import Client


@dataclass(frozen=True)
class CallCounts:
    """Privileged calls made so far: ``reads`` and ``writes``."""

    reads: int
    writes: int


class PrivilegedCalls:
    """A privileged ``Client`` whose every call is counted as a read or a write."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._reads = 0
        self._writes = 0

    @property
    def counts(self) -> CallCounts:
        """The counters now (compare two snapshots for one operation's calls)."""
        with self._lock:
            return CallCounts(self._reads, self._writes)

    def read(self, argv: list[str] | tuple[str, ...], check: bool = True) -> str:
        """Run a command that only reads; its stdout as text."""
        self._count(write=False)
        return self.client.execute(list(argv), check=check).stdout_text

    def write(self, argv: list[str] | tuple[str, ...]) -> None:
        """Run a command that changes something; CommandFailed if it fails."""
        self._count(write=True)
        self.client.execute(list(argv))

    def list_netns(self) -> list[str]:
        """Namespace names (in the helper, no process)."""
        self._count(write=False)
        return self.client.list_netns()

    def add_netns(self, name: str) -> None:
        """Create a namespace (in the helper, no process)."""
        self._count(write=True)
        self.client.add_netns(name)

    def delete_netns(self, name: str) -> None:
        """Delete a namespace (in the helper, no process)."""
        self._count(write=True)
        self.client.delete_netns(name)

    def _count(self, write: bool) -> None:
        with self._lock:
            if write:
                self._writes += 1
            else:
                self._reads += 1
