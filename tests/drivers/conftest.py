"""Fixtures for driver tests: throwaway driver packages importable from tmp_path."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path
from typing import Callable, Iterator

import pytest

ORIGIN = "option [vpnagent] vpn_device_driver in /etc/isthmus/isthmus.conf"
SERVICE_ORIGIN = "option [service_providers] service_provider in /etc/isthmus/isthmus.conf"


@pytest.fixture
def clean_modules() -> Iterator[None]:
    """Forget every module a test imported, so the next test imports its own files."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]


@pytest.fixture
def write_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                  clean_modules: None) -> Callable[[dict[str, str]], dict[str, Path]]:
    """``write_modules({"acmedrv/device.py": source, ...})``: files under a path on sys.path.

    Sources are dedented; returns the written paths by their relative name.
    """
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))

    def write(files: dict[str, str]) -> dict[str, Path]:
        written = {}
        for relative, source in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
            written[relative] = path
        importlib.invalidate_caches()  # new files in a directory already scanned
        return written
    return write


def line_of(path: Path, text: str) -> int:
    """The 1-based number of the first line of ``path`` containing ``text``."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")
