"""DriverLoadError, the one error of the loader, and the load attempt every message repeats."""

from __future__ import annotations

from dataclasses import dataclass

from isthmus.drivers.kinds import KINDS, Kind

__all__ = ["Attempt", "DriverLoadError"]

_INDENT = " " * 9  # aligns continuation lines under "cause: " / "fix:   "


class DriverLoadError(Exception):
    """A driver that cannot be loaded: ``str()`` is one message with origin, path, cause, fix.

    ``kind`` is ``None`` when the kind itself could not be told (``isthmus driver
    check`` without ``--kind``). ``path`` is the dotted path an entry point names.
    """

    def __init__(self, spec: str, kind: Kind | None, cause: str, fix: str,
                 origin: str | None = None, path: str | None = None) -> None:
        # All positional in args, so the error pickles (e.g. across processes).
        super().__init__(spec, kind, cause, fix, origin, path)
        self.spec = spec
        self.kind = kind
        self.cause = cause
        self.fix = fix
        self.origin = origin
        self.path = path

    def __str__(self) -> str:
        what = f"{self.kind} driver" if self.kind else "driver"
        head = f"Cannot load {what} {self.spec!r}"
        if self.path and self.path != self.spec:
            group = KINDS[self.kind].group if self.kind else "its group"
            head += f" (entry point in {group}: {self.path})"
        lines = [head]
        if self.origin:
            lines.append(f"  from:  {self.origin}")
        lines.append("  cause: " + self.cause.replace("\n", "\n" + _INDENT))
        lines.append("  fix:   " + self.fix.replace("\n", "\n" + _INDENT))
        return "\n".join(lines)


@dataclass(frozen=True)
class Attempt:
    """One load in progress: what every error about it must repeat."""

    spec: str
    kind: Kind | None
    origin: str | None
    path: str | None = None

    def error(self, cause: str, fix: str) -> DriverLoadError:
        """A :class:`DriverLoadError` for this attempt, with what went wrong and how to fix it."""
        return DriverLoadError(self.spec, self.kind, cause, fix, self.origin, self.path)
