"""Loading filter files: every usable entry, and a precise report of the rest.

Same layout as oslo.rootwrap: each `filters_path` directory in order, every
regular file in it not starting with `.`, entries `name: Class, arg, ...`
in a `[Filters]` section; the first matching filter wins. Unlike
oslo.rootwrap, files are taken in sorted order (deterministic), and a bad
entry (unknown class, wrong arguments, invalid regex) is reported with its
file, line and reason while the rest still loads; oslo.rootwrap silently
drops unknown classes and crashes on the others. When running as root,
files and directories are refused if they, or any directory above them,
can be written by non-root users (who could swap them before a reload).
"""

from __future__ import annotations

import os
import stat
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (CLI start-up)
if TYPE_CHECKING:
    from typing import Sequence

from isthmus.privileged.exceptions import FilterDefinitionError
from isthmus.privileged.filters import FILTER_CLASSES, CommandFilter, ReadFileFilter
from isthmus.privileged.ini import parse_ini
from isthmus.privileged.trust import untrusted_path_reason, untrusted_reason


class FilterFileProblem:
    """One thing that could not be loaded: where, and why."""

    __slots__ = ("path", "line", "reason")

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        self.path, self.line, self.reason = path, line, reason

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.reason}"

    def __repr__(self) -> str:
        return f"FilterFileProblem({str(self)!r})"


class FilterSet:
    """All loaded filters in matching order, plus the problems met on the way."""

    def __init__(self) -> None:
        self.filters: list[CommandFilter] = []
        self.problems: list[FilterFileProblem] = []
        self.files: list[str] = []


def load_filters(filters_path: Sequence[str], *, validate: bool = True) -> FilterSet:
    """Load every filter file of every directory; missing directories are skipped.

    `validate=False` defers regex compilation to first use (the CLI does
    this to stay fast); invalid patterns then simply never match.
    """
    result = FilterSet()
    check_owner = os.geteuid() == 0
    for directory in filters_path:
        try:
            names = sorted(os.listdir(directory))
        except FileNotFoundError:
            continue
        except OSError as exc:
            result.problems.append(FilterFileProblem(directory, None, f"cannot list: {exc.strerror}"))
            continue
        if check_owner:
            reason = untrusted_path_reason(os.path.abspath(directory))
            if reason:
                result.problems.append(FilterFileProblem(directory, None, f"directory skipped: {reason}"))
                continue
        for name in names:
            if name.startswith("."):
                continue
            path = os.path.join(directory, name)
            filters, problems = load_filter_file(path, check_owner=check_owner, validate=validate)
            if filters is None:
                result.problems.extend(problems)
                continue
            result.files.append(path)
            result.filters.extend(filters)
            result.problems.extend(problems)
    return result


def load_filter_file(
    path: str, *, check_owner: bool = False, validate: bool = True
) -> tuple[list[CommandFilter] | None, list[FilterFileProblem]]:
    """Filters of one file (None if it is not a regular file) and its problems."""
    problems: list[FilterFileProblem] = []
    try:
        with open(path, encoding="utf-8") as handle:
            st = os.fstat(handle.fileno())
            if not stat.S_ISREG(st.st_mode):
                return None, []
            if check_owner:
                reason = untrusted_reason(path, st) or untrusted_path_reason(os.path.abspath(path))
                if reason:
                    return None, [FilterFileProblem(path, None, f"file skipped: {reason}")]
            text = handle.read()
    except IsADirectoryError:
        return None, []
    except (OSError, UnicodeDecodeError) as exc:
        return None, [FilterFileProblem(path, None, f"cannot read: {exc}")]

    parsed = parse_ini(text)
    problems.extend(FilterFileProblem(path, line, reason) for line, reason in parsed.bad_lines)
    section = parsed.sections.get("Filters")
    if section is None:
        problems.append(FilterFileProblem(path, None, "no [Filters] section; nothing loaded from this file"))
        return [], problems
    filters: list[CommandFilter] = []
    for entry in section.entries.values():
        try:
            filters.append(build_filter(entry.name, entry.value, validate=validate))
        except FilterDefinitionError as exc:
            problems.append(FilterFileProblem(path, entry.line, f"{entry.name}: {exc}"))
    return filters, problems


def build_filter(name: str, definition: str, *, validate: bool = True) -> CommandFilter:
    """Build one filter from `Class, arg, ...`; raises FilterDefinitionError."""
    words = [word.strip() for word in definition.split(",")]
    class_name, args = words[0], words[1:]
    cls = FILTER_CLASSES.get(class_name)
    if cls is None:
        known = ", ".join(sorted(FILTER_CLASSES))
        raise FilterDefinitionError(f"unknown filter class {class_name!r}; expected one of: {known}")
    if len(args) < cls.min_args:
        raise FilterDefinitionError(
            f"{class_name} expects {cls.usage}; got {len(args)} argument(s): {', '.join(args) or 'none'}"
        )
    try:
        built = cls(*args)
    except TypeError as exc:
        raise FilterDefinitionError(f"{class_name} expects {cls.usage}: {exc}") from None
    if validate:
        built.validate()
    if not isinstance(built, ReadFileFilter) and built.run_as != "root":
        _check_user(built.run_as)
    built.name = name
    return built


def _check_user(user: str) -> None:
    import pwd

    try:
        pwd.getpwnam(user)
    except KeyError:
        raise FilterDefinitionError(f"run_as user {user!r} does not exist on this host") from None
