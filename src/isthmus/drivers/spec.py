"""Turn a driver spec (entry point name or dotted path) into a module and an attribute.

A spec that is no dotted path fails here, before anything is imported, with the
installed entry points and the closest names.
"""

from __future__ import annotations

import importlib.util
import keyword
from importlib.metadata import entry_points

from isthmus.drivers.errors import Attempt
from isthmus.drivers.kinds import KINDS, KindInfo, entry_point_names, entry_point_value
from isthmus.drivers.messages import closest, quoted

__all__ = ["entry_points_hint", "resolve", "submodule_exists"]


def resolve(spec: str, infos: list[KindInfo],
            attempt: Attempt) -> tuple[Attempt, str, str]:
    """Turn ``spec`` into ``(attempt with path, module name, attribute path)``."""
    for info in infos:
        eps = {ep.value: ep for ep in entry_points(group=info.group, name=spec)}
        if len(eps) > 1:
            raise attempt.error(
                f"entry point {spec!r} in {info.group} names several classes: "
                + ", ".join(sorted(eps)),
                "uninstall one of the distributions that declare it, or configure the "
                "dotted path of the one you mean")
        if eps:
            ep = next(iter(eps.values()))
            return Attempt(spec, attempt.kind, attempt.origin, ep.value), ep.module, ep.attr

    if not spec.strip():
        raise attempt.error("the driver is empty", _bare_fix(spec, infos))
    if spec.upper().startswith("VPN:") and spec.count(":") >= 2:
        raise attempt.error(
            "this is a whole service_provider value, not a driver",
            "pass only the third field, e.g. for VPN:strongswan:mydriver.service:"
            "MyServiceDriver:default the driver is mydriver.service:MyServiceDriver")
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
    elif "." in spec:
        module_name, _, attr = spec.rpartition(".")
    else:
        raise attempt.error(_bare_cause(spec, infos), _bare_fix(spec, infos))
    if not (_dotted(module_name) and _dotted(attr)):
        dash = (f" (a Python package is spelled with '_' where its distribution has '-': "
                f"{spec.replace('-', '_')!r})" if "-" in spec else "")
        raise attempt.error(
            f"{spec!r} is not a dotted path{dash}",
            "write package.module:ClassName or package.module.ClassName "
            "(Python identifiers separated by dots), or an installed entry point ("
            + entry_points_hint(infos) + ")")
    return attempt, module_name, attr


def _other_kind(spec: str, infos: list[KindInfo]) -> KindInfo | None:
    """The other kind, when ``spec`` is its entry point (``ipsec`` given as a device driver)."""
    if len(infos) != 1:
        return None
    return next((o for o in KINDS.values()
                 if o is not infos[0] and entry_point_value(spec, o)), None)


def _bare_cause(spec: str, infos: list[KindInfo]) -> str:
    groups = " or ".join(info.group for info in infos)
    cause = f"{spec!r} is neither an entry point in {groups} nor a dotted path"
    other = _other_kind(spec, infos)
    if other:
        cause += (f"; it is a {other.kind} driver (an entry point in {other.group}), "
                  f"and this is a {infos[0].kind} driver")
    elif spec and submodule_exists(spec):
        cause += f"; {spec!r} is a module, and a driver is a class"
    return cause


def _bare_fix(spec: str, infos: list[KindInfo]) -> str:
    names = sorted({n for info in infos for n in entry_point_names(info.kind)})  # type: ignore[arg-type]
    close = closest(spec, names)
    fix = f"did you mean {quoted(close, ' or ')}? " if close else ""
    other = _other_kind(spec, infos)
    if other:
        fix += f"configure {spec!r} with {other.option}. "
    elif spec and submodule_exists(spec):
        fix += f"name a class in it: {spec}.module:ClassName. "
    return fix + (f"Installed entry points: {entry_points_hint(infos)}. "
                  "Or give the dotted path of a class: package.module:ClassName")


def entry_points_hint(infos: list[KindInfo]) -> str:
    """``isthmus.vpn.device_drivers: noop`` for each group, to list what is installed."""
    return "; ".join(f"{info.group}: {', '.join(entry_point_names(info.kind)) or 'none'}"  # type: ignore[arg-type]
                     for info in infos)


def _dotted(text: str) -> bool:
    return bool(text) and all(p.isidentifier() and not keyword.iskeyword(p)
                              for p in text.split("."))


def submodule_exists(name: str) -> bool:
    """Whether module ``name`` can be found (without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
