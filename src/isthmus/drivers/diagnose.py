"""Import a driver's module and attribute; turn each way that fails into a cause and a fix.

A missing module suggests its closest siblings, a module that raises names the
line in the driver's code, a missing class lists the classes that are there.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from isthmus.drivers.errors import Attempt, DriverLoadError
from isthmus.drivers.kinds import KINDS, KindInfo
from isthmus.drivers.messages import (closest, code_roots, describe, driver_frame, exc_text,
                                      file_of, frame_text, quoted)
from isthmus.drivers.spec import entry_points_hint, submodule_exists

__all__ = ["classes_hint", "classes_in", "import_attr"]


def import_attr(attempt: Attempt, module_name: str, attr: str,
                info: KindInfo | None) -> Any:
    """Import ``module_name`` and walk ``attr``, failing with the closest names."""
    obj: Any = _import_module(attempt, module_name, attr, info)
    for part in attr.split(".") if attr else ():  # no attr: an entry point naming a module
        try:
            obj = getattr(obj, part)
            continue
        except AttributeError:
            pass
        if inspect.ismodule(obj) and submodule_exists(f"{obj.__name__}.{part}"):
            # ``pkg.mod`` was meant as a module: report that, not a missing class.
            obj = _import_module(attempt, f"{obj.__name__}.{part}", "", info)
            continue
        raise _missing_attr(attempt, obj, part, info)
    return obj


def _import_module(attempt: Attempt, module_name: str, attr: str,
                   info: KindInfo | None) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        missing = err.name or module_name
        if module_name == missing or module_name.startswith(missing + "."):
            raise _module_not_found(attempt, module_name, missing, attr, info) from err
        raise _import_failed(attempt, module_name, err) from err
    except (Exception, SystemExit) as err:  # SyntaxError, NameError, sys.exit() at import…
        raise _import_failed(attempt, module_name, err) from err


def _module_not_found(attempt: Attempt, module_name: str, missing: str, attr: str,
                      info: KindInfo | None) -> DriverLoadError:
    parent, _, last = missing.rpartition(".")
    sep = ":" if ":" in (attempt.path or attempt.spec) else "."
    cause = f"no module named {missing!r}"
    parent_mod = sys.modules.get(parent) if parent else None
    if parent and parent_mod is not None and not hasattr(parent_mod, "__path__"):
        cause += f": {parent!r} is a module ({file_of(parent_mod)}), not a package"
        return attempt.error(cause, f"name a class in it: {classes_hint(parent_mod, info)}")
    if parent_mod is not None:
        candidates = sorted({m.name for m in pkgutil.iter_modules(parent_mod.__path__)})
        where = f"Package {parent!r} ({file_of(parent_mod)}) has the modules: " + (
            ", ".join(candidates) or "none")
    else:
        candidates = sorted({m.name for m in pkgutil.iter_modules()})
        where = None
    close = closest(last, candidates)
    prefix = f"{parent}." if parent else ""
    suggestions = [prefix + c + module_name[len(missing):] + (sep + attr if attr else "")
                   for c in close]
    fixes = []
    if suggestions:
        fixes.append(f"did you mean {quoted(suggestions, ' or ')}?")
    if where:
        fixes.append(where)
    else:
        fixes.append(f"If {missing!r} is your driver's package, install it into the "
                     f"environment isthmus runs from ({sys.prefix}): "
                     f"{Path(sys.executable).name} -m pip install -e /path/to/your/driver")
    infos = [info] if info else list(KINDS.values())
    fixes.append(f"Installed entry points: {entry_points_hint(infos)}")
    return attempt.error(cause, "\n".join(fixes))


def _import_failed(attempt: Attempt, module_name: str, err: BaseException) -> DriverLoadError:
    if isinstance(err, SyntaxError) and err.filename:
        location = f"{err.filename}:{err.lineno}"
        where = f"\nat {location}" + (f": {err.text.strip()}" if err.text else "")
        text = f"{type(err).__name__}: {err.msg}"
    else:
        frame = driver_frame(err.__traceback__, code_roots(module_name))
        location = f"{frame.filename}:{frame.lineno}" if frame else ""
        where = frame_text(err.__traceback__, code_roots(module_name))
        text = exc_text(err)
    cause = f"importing {module_name} raised {text}{where}"
    at = f" at {location}" if location else ""
    if isinstance(err, ModuleNotFoundError) and err.name:
        top = err.name.partition(".")[0]
        fix = (f"install the package that provides {top!r} into the environment isthmus "
               f"runs from ({sys.prefix}), or remove the import{at}")
    elif isinstance(err, SyntaxError):
        fix = f"correct the syntax{at}"
    else:
        fix = (f"fix the code{at}; reproduce with: "
               f"{Path(sys.executable).name} -c 'import {module_name}'")
    return attempt.error(cause, fix)


def _missing_attr(attempt: Attempt, owner: Any, name: str,
                  info: KindInfo | None) -> DriverLoadError:
    if not inspect.ismodule(owner):
        return attempt.error(f"{describe(owner)} has no attribute {name!r}",
                             "name the driver class directly: package.module:ClassName")
    classes = classes_in(owner, info)
    close = closest(name, classes)
    cause = f"module {owner.__name__!r} ({file_of(owner)}) has no class {name!r}"
    module_part = owner.__name__
    fixes = []
    if close:
        fixes.append("did you mean " + quoted([f"{module_part}:{c}" for c in close], " or ")
                     + "?")
    fixes.append(classes_hint(owner, info))
    return attempt.error(cause, " ".join(fixes))


def classes_in(module: ModuleType, info: KindInfo | None) -> list[str]:
    """Classes defined in ``module``; the kind's subclasses first when there are any."""
    defined = [name for name, obj in vars(module).items()
               if inspect.isclass(obj) and obj.__module__ == module.__name__]
    bases = (info.base,) if info else tuple(i.base for i in KINDS.values())
    drivers = [n for n in defined if issubclass(getattr(module, n), bases)]
    return sorted(drivers) or sorted(defined)


def classes_hint(module: ModuleType, info: KindInfo | None) -> str:
    """The classes ``module`` defines, for an error that says which one to name instead."""
    classes = classes_in(module, info)
    if not classes:
        base = info.base.__name__ if info else "ServiceDriver or DeviceDriver"
        return f"{module.__name__} defines no classes; define your {base} subclass there"
    return f"classes defined in {module.__name__}: {', '.join(classes)}"
