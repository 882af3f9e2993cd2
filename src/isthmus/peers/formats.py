"""The peer configuration formats, by name: each one module of :mod:`isthmus.peers`.

A format module exposes four names, checked when it is registered here (as
pluggy checks a plugin), so that a module missing one fails at import with the
module, the name and what to write, not at the first download:

==================  ========================================================
``FORMAT``          its name, as in ``?format=`` (the module's name, ``_`` as ``-``)
``DESCRIPTION``     one line for the list of formats
``FILENAME``        the download's file name; ``{name}`` is replaced by the
                    connection's name (or id), made safe for a file name
``render(view)``    :class:`~isthmus.peers.PeerView` → the configuration text;
                    raises :class:`~isthmus.peers.Unsupported`
==================  ========================================================

Adding a vendor: write ``isthmus/peers/<vendor>.py`` and add its name to
:data:`MODULES`.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from isthmus.peers import PeerView

MODULES: tuple[str, ...] = ("strongswan", "libreswan", "vyos", "cisco_ios", "juniper_srx",
                            "fortigate", "generic")
"""The modules of the formats served, in the order the API lists them."""


class FormatError(TypeError):
    """A format module without the interface above (raised at import, naming what is missing)."""


@dataclass(frozen=True)
class Format:
    """One registered format: its module's four names."""

    name: str
    description: str
    filename_pattern: str
    render: Callable[[PeerView], str]

    def filename(self, view: PeerView) -> str:
        """The download's file name for ``view``'s connection."""
        return self.filename_pattern.replace("{name}", _safe(view.name or view.connection_id))

    def listing(self) -> dict[str, str]:
        """How the API lists this format (``GET .../peer-config`` without ``format``)."""
        return {"name": self.name, "description": self.description,
                "filename": self.filename_pattern}


def _safe(name: str) -> str:
    """``name`` with only letters, digits, ``.``, ``_`` and ``-`` (no path, no quote)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "connection"


def register(module: ModuleType) -> Format:
    """The :class:`Format` of ``module``, after checking it has the whole interface."""
    where = module.__name__
    for attribute, kind in (("FORMAT", str), ("DESCRIPTION", str), ("FILENAME", str)):
        value = getattr(module, attribute, None)
        if not isinstance(value, kind):
            raise FormatError(f"peer format module {where} ({module.__file__}): "
                              f"{attribute} must be a {kind.__name__}, found {value!r}; "
                              f"add e.g. {attribute} = \"...\" at module level")
    render = getattr(module, "render", None)
    if not callable(render):
        raise FormatError(f"peer format module {where} ({module.__file__}) has no "
                          "render(view: PeerView) -> str function")
    expected = where.rpartition(".")[2].replace("_", "-")
    if module.FORMAT != expected:
        raise FormatError(f"peer format module {where}: FORMAT is {module.FORMAT!r}, "
                          f"expected the module's name {expected!r}")
    return Format(module.FORMAT, module.DESCRIPTION, module.FILENAME, render)


FORMATS: dict[str, Format] = {
    fmt.name: fmt for fmt in (register(importlib.import_module(f"isthmus.peers.{module}"))
                              for module in MODULES)}
"""Every format by name."""


class UnknownFormat(KeyError):
    """A ``format`` that is not in :data:`FORMATS`; the message lists the valid ones."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown peer configuration format {name!r}; "
                         f"valid formats: {', '.join(FORMATS)}")

    def __str__(self) -> str:
        return str(self.args[0])


def get(name: str) -> Format:
    """The format called ``name``; raises :class:`UnknownFormat`."""
    try:
        return FORMATS[name]
    except KeyError:
        raise UnknownFormat(name) from None
