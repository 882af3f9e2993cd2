"""The INI dialect of rootwrap.conf and filter files, with line numbers.

oslo.rootwrap reads both with `configparser.RawConfigParser`; this parser
accepts the same subset (sections, `name: value` / `name = value`,
full-line `#`/`;` comments, indented continuation lines, lower-cased names,
a repeated name keeping its first position and last value) but remembers the
line of every entry so errors can point at it, collects bad lines instead of
failing the whole file, and keeps the helper's start-up free of the
configparser import.
"""

from __future__ import annotations

# Plain classes rather than dataclasses: `dataclasses` imports `inspect`,
# which alone would double the CLI's start-up time.


class Entry:
    """One `name: value` entry; `value` joins continuation lines with newlines."""

    __slots__ = ("name", "value", "line")

    def __init__(self, name: str, value: str, line: int) -> None:
        self.name, self.value, self.line = name, value, line


class Section:
    """One ``[section]`` of a filter file, with the line it starts on for error messages."""

    __slots__ = ("name", "line", "entries")

    def __init__(self, name: str, line: int) -> None:
        self.name, self.line = name, line
        self.entries: dict[str, Entry] = {}


class IniFile:
    """A parsed file: sections by name plus the lines that could not be parsed."""

    __slots__ = ("sections", "bad_lines")

    def __init__(self, sections: dict[str, Section], bad_lines: list[tuple[int, str]]) -> None:
        self.sections, self.bad_lines = sections, bad_lines


def parse_ini(text: str) -> IniFile:
    """Parse `text`; never raises, problems end up in `bad_lines`."""
    sections: dict[str, Section] = {}
    bad_lines: list[tuple[int, str]] = []
    current: Section | None = None
    last: Entry | None = None
    last_indent = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped[0] in "#;":
            # configparser keeps blank lines inside values only to strip them
            # again; for our purposes a blank line never matters.
            continue
        indent = len(raw) - len(raw.lstrip())
        if last is not None and indent > last_indent:
            last.value = f"{last.value}\n{stripped}"
            continue
        last = None
        if stripped.startswith("[") and "]" in stripped:
            name = stripped[1 : stripped.rindex("]")]
            current = sections.setdefault(name, Section(name, number))
            continue
        if current is None:
            bad_lines.append((number, "entry before any [section] header"))
            continue
        cut = _delimiter_index(stripped)
        if cut <= 0:
            bad_lines.append((number, "expected 'name: value' or 'name = value'"))
            continue
        name = stripped[:cut].strip().lower()
        value = stripped[cut + 1 :].strip()
        entry = current.entries.get(name)
        if entry is None:
            entry = current.entries[name] = Entry(name, value, number)
        else:
            # Same as RawConfigParser(strict=False): last value wins, the
            # entry keeps its first position.
            entry.value, entry.line = value, number
        last, last_indent = entry, indent
    return IniFile(sections, bad_lines)


def _delimiter_index(line: str) -> int:
    """Index of the first ':' or '=', or -1."""
    positions = [i for i in (line.find(":"), line.find("=")) if i >= 0]
    return min(positions) if positions else -1


def ascii_int(text: str) -> int | None:
    """`text` as a decimal integer (ASCII digits, optional leading `-`), else None.

    `str.isdigit()` is true for `²` and other Unicode digits that `int()`
    then rejects with a ValueError, and `int()` alone also takes `_`, `+`,
    spaces and other scripts' digits: check the characters first.
    """
    digits = text[1:] if text.startswith("-") else text
    if not digits or not (digits.isascii() and digits.isdigit()):
        return None
    return int(text)
