"""Load a driver class from a dotted path or an entry point, and say exactly why it cannot.

Neutron reported every failure as "Can not load driver"; here every failure is one
:class:`DriverLoadError` naming where the spec came from, the dotted path, the cause
(with file and line when there is one) and the fix (with the closest existing names,
or the code to write). The checks run when a driver is loaded, as pluggy checks a
plugin when it is registered, so a broken driver stops the server or agent at start.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import keyword
import pkgutil
import sys
import traceback
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, Callable, Literal

from isthmus.drivers.device.base import AgentContext, DeviceDriver
from isthmus.drivers.service.base import ServiceDriver

Kind = Literal["service", "device"]

__all__ = ["DriverLoadError", "Kind", "build_driver", "check_driver", "driver_kinds", "entry_point_names",
           "load_driver"]


@dataclass(frozen=True)
class _KindInfo:
    """What differs between the two kinds of driver, for loading and for messages."""

    kind: str
    group: str
    base: type
    import_line: str
    ctor_param: str
    ctor_type: str
    option: str
    hooks: tuple[str, ...]


_KINDS: dict[str, _KindInfo] = {
    "service": _KindInfo(
        kind="service", group="isthmus.vpn.service_drivers", base=ServiceDriver,
        import_line="from isthmus.drivers.service import Change, ServiceDriver",
        ctor_param="server", ctor_type="DriverServer",
        option="[service_providers] service_provider", hooks=("validate", "changed")),
    "device": _KindInfo(
        kind="device", group="isthmus.vpn.device_drivers", base=DeviceDriver,
        import_line="from isthmus.drivers.device import DeviceDriver, RouterState, Statuses",
        ctor_param="agent", ctor_type="AgentContext",
        option="[vpnagent] vpn_device_driver", hooks=("sync", "poll", "start", "stop")),
}

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
            group = _KINDS[self.kind].group if self.kind else "its group"
            head += f" (entry point in {group}: {self.path})"
        lines = [head]
        if self.origin:
            lines.append(f"  from:  {self.origin}")
        lines.append("  cause: " + self.cause.replace("\n", "\n" + _INDENT))
        lines.append("  fix:   " + self.fix.replace("\n", "\n" + _INDENT))
        return "\n".join(lines)


@dataclass(frozen=True)
class _Attempt:
    """One load in progress: what every error about it must repeat."""

    spec: str
    kind: Kind | None
    origin: str | None
    path: str | None = None

    def error(self, cause: str, fix: str) -> DriverLoadError:
        return DriverLoadError(self.spec, self.kind, cause, fix, self.origin, self.path)


# --------------------------------------------------------------------------- public API


def load_driver(spec: str, kind: Kind, *, origin: str | None = None) -> type:
    """Import the driver class ``spec`` names and check it fits ``kind``'s base.

    ``spec`` is ``pkg.mod.Class``, ``pkg.mod:Class`` or an entry point name in the
    kind's group (entry points win). ``origin`` says where the spec was written
    (config file and option) and is repeated in every error.
    """
    info = _info(kind)
    attempt, module_name, attr = _resolve(spec, [info], _Attempt(spec, kind, origin))
    obj = _import_attr(attempt, module_name, attr, info)
    return _check_class(attempt, obj, info)


def check_driver(spec: str, kind: Kind, *, origin: str | None = None) -> Any:
    """Load ``spec`` and build one instance with a stand-in server or agent.

    Catches what only shows at run time: a constructor that raises. Returns the
    instance; its ``start()`` is not called (it may touch real devices).
    """
    arg: Any = AgentContext(host="check") if kind == "device" else _CheckServer()
    return build_driver(spec, kind, arg, origin=origin)


def build_driver(spec: str, kind: Kind, arg: Any, *, origin: str | None = None) -> Any:
    """Load ``spec`` and build it with ``arg`` (the server, or the agent's context).

    What the server and agent need at start: a constructor that raises becomes a
    :class:`DriverLoadError` naming the line in the driver that failed.
    """
    cls = load_driver(spec, kind, origin=origin)
    info = _info(kind)
    attempt = _Attempt(spec, kind, origin, _entry_point_value(spec, info))
    try:
        return cls(arg)
    except Exception as err:
        where = _frame_text(err.__traceback__, _code_roots(cls.__module__))
        advice = ("do device work in start() or sync(), not in __init__: the agent builds "
                  "drivers before it can report anything" if kind == "device" else
                  "keep __init__ cheap and free of I/O: the server builds its service "
                  "drivers at start-up, before it serves requests")
        raise attempt.error(
            f"{cls.__name__}({info.ctor_param}) raised {_exc_text(err)}{where}",
            f"make the constructor succeed with only `{info.ctor_param}`; {advice}") from err


def driver_kinds(spec: str, *, origin: str | None = None) -> list[Kind]:
    """Which kinds ``spec`` is: the groups an entry point is in, or the class's base.

    Raises :class:`DriverLoadError` (``kind=None``) when ``spec`` cannot be imported or
    names neither a service driver nor a device driver.
    """
    kinds: list[Kind] = [k for k, info in _KINDS.items()  # type: ignore[misc]
                         if _entry_point_value(spec, info)]
    if kinds:
        return kinds
    attempt, module_name, attr = _resolve(spec, list(_KINDS.values()),
                                          _Attempt(spec, None, origin))
    obj = _import_attr(attempt, module_name, attr, None)
    if inspect.isclass(obj):
        for kind, info in _KINDS.items():
            if issubclass(obj, info.base):
                return [kind]  # type: ignore[list-item]
    raise attempt.error(
        f"{_describe(obj)} is neither a service driver nor a device driver",
        "subclass one of the two bases:\n"
        f"    {_KINDS['service'].import_line}   # server side\n"
        f"    {_KINDS['device'].import_line}   # agent side\n"
        "or say which it should be with --kind service|device")


def entry_point_names(kind: Kind) -> list[str]:
    """The entry point names installed in ``kind``'s group, sorted."""
    return sorted({ep.name for ep in entry_points(group=_info(kind).group)})


# --------------------------------------------------------------------------- resolving


def _info(kind: str) -> _KindInfo:
    try:
        return _KINDS[kind]
    except KeyError:
        raise ValueError(f"kind must be 'service' or 'device', not {kind!r}") from None


def _entry_point_value(spec: str, info: _KindInfo) -> str | None:
    values = sorted({ep.value for ep in entry_points(group=info.group, name=spec)})
    return values[0] if values else None


def _resolve(spec: str, infos: list[_KindInfo],
             attempt: _Attempt) -> tuple[_Attempt, str, str]:
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
            return _Attempt(spec, attempt.kind, attempt.origin, ep.value), ep.module, ep.attr

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
            + _entry_points_hint(infos) + ")")
    return attempt, module_name, attr


def _other_kind(spec: str, infos: list[_KindInfo]) -> _KindInfo | None:
    """The other kind, when ``spec`` is its entry point (``ipsec`` given as a device driver)."""
    if len(infos) != 1:
        return None
    return next((o for o in _KINDS.values()
                 if o is not infos[0] and _entry_point_value(spec, o)), None)


def _bare_cause(spec: str, infos: list[_KindInfo]) -> str:
    groups = " or ".join(info.group for info in infos)
    cause = f"{spec!r} is neither an entry point in {groups} nor a dotted path"
    other = _other_kind(spec, infos)
    if other:
        cause += (f"; it is a {other.kind} driver (an entry point in {other.group}), "
                  f"and this is a {infos[0].kind} driver")
    elif spec and _submodule_exists(spec):
        cause += f"; {spec!r} is a module, and a driver is a class"
    return cause


def _bare_fix(spec: str, infos: list[_KindInfo]) -> str:
    names = sorted({n for info in infos for n in entry_point_names(info.kind)})  # type: ignore[arg-type]
    close = _closest(spec, names)
    fix = f"did you mean {_quoted(close, ' or ')}? " if close else ""
    other = _other_kind(spec, infos)
    if other:
        fix += f"configure {spec!r} with {other.option}. "
    elif spec and _submodule_exists(spec):
        fix += f"name a class in it: {spec}.module:ClassName. "
    return fix + (f"Installed entry points: {_entry_points_hint(infos)}. "
                  "Or give the dotted path of a class: package.module:ClassName")


def _entry_points_hint(infos: list[_KindInfo]) -> str:
    """``isthmus.vpn.device_drivers: noop`` for each group, to list what is installed."""
    return "; ".join(f"{info.group}: {', '.join(entry_point_names(info.kind)) or 'none'}"  # type: ignore[arg-type]
                     for info in infos)


def _dotted(text: str) -> bool:
    return bool(text) and all(p.isidentifier() and not keyword.iskeyword(p)
                              for p in text.split("."))


# --------------------------------------------------------------------------- importing


def _import_attr(attempt: _Attempt, module_name: str, attr: str,
                 info: _KindInfo | None) -> Any:
    """Import ``module_name`` and walk ``attr``, failing with the closest names."""
    obj: Any = _import_module(attempt, module_name, attr, info)
    for part in attr.split(".") if attr else ():  # no attr: an entry point naming a module
        try:
            obj = getattr(obj, part)
            continue
        except AttributeError:
            pass
        if inspect.ismodule(obj) and _submodule_exists(f"{obj.__name__}.{part}"):
            # ``pkg.mod`` was meant as a module: report that, not a missing class.
            obj = _import_module(attempt, f"{obj.__name__}.{part}", "", info)
            continue
        raise _missing_attr(attempt, obj, part, info)
    return obj


def _import_module(attempt: _Attempt, module_name: str, attr: str,
                   info: _KindInfo | None) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        missing = err.name or module_name
        if module_name == missing or module_name.startswith(missing + "."):
            raise _module_not_found(attempt, module_name, missing, attr, info) from err
        raise _import_failed(attempt, module_name, err) from err
    except (Exception, SystemExit) as err:  # SyntaxError, NameError, sys.exit() at import…
        raise _import_failed(attempt, module_name, err) from err


def _submodule_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _module_not_found(attempt: _Attempt, module_name: str, missing: str, attr: str,
                      info: _KindInfo | None) -> DriverLoadError:
    parent, _, last = missing.rpartition(".")
    sep = ":" if ":" in (attempt.path or attempt.spec) else "."
    cause = f"no module named {missing!r}"
    parent_mod = sys.modules.get(parent) if parent else None
    if parent and parent_mod is not None and not hasattr(parent_mod, "__path__"):
        cause += f": {parent!r} is a module ({_file_of(parent_mod)}), not a package"
        return attempt.error(cause, f"name a class in it: {_classes_hint(parent_mod, info)}")
    if parent_mod is not None:
        candidates = sorted({m.name for m in pkgutil.iter_modules(parent_mod.__path__)})
        where = f"Package {parent!r} ({_file_of(parent_mod)}) has the modules: " + (
            ", ".join(candidates) or "none")
    else:
        candidates = sorted({m.name for m in pkgutil.iter_modules()})
        where = None
    close = _closest(last, candidates)
    prefix = f"{parent}." if parent else ""
    suggestions = [prefix + c + module_name[len(missing):] + (sep + attr if attr else "")
                   for c in close]
    fixes = []
    if suggestions:
        fixes.append(f"did you mean {_quoted(suggestions, ' or ')}?")
    if where:
        fixes.append(where)
    else:
        fixes.append(f"If {missing!r} is your driver's package, install it into the "
                     f"environment isthmus runs from ({sys.prefix}): "
                     f"{Path(sys.executable).name} -m pip install -e /path/to/your/driver")
    infos = [info] if info else list(_KINDS.values())
    fixes.append(f"Installed entry points: {_entry_points_hint(infos)}")
    return attempt.error(cause, "\n".join(fixes))


def _import_failed(attempt: _Attempt, module_name: str, err: BaseException) -> DriverLoadError:
    if isinstance(err, SyntaxError) and err.filename:
        location = f"{err.filename}:{err.lineno}"
        where = f"\nat {location}" + (f": {err.text.strip()}" if err.text else "")
        text = f"{type(err).__name__}: {err.msg}"
    else:
        frame = _driver_frame(err.__traceback__, _code_roots(module_name))
        location = f"{frame.filename}:{frame.lineno}" if frame else ""
        where = _frame_text(err.__traceback__, _code_roots(module_name))
        text = _exc_text(err)
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


def _missing_attr(attempt: _Attempt, owner: Any, name: str,
                  info: _KindInfo | None) -> DriverLoadError:
    if not inspect.ismodule(owner):
        return attempt.error(f"{_describe(owner)} has no attribute {name!r}",
                             "name the driver class directly: package.module:ClassName")
    classes = _classes_in(owner, info)
    close = _closest(name, classes)
    cause = f"module {owner.__name__!r} ({_file_of(owner)}) has no class {name!r}"
    module_part = owner.__name__
    fixes = []
    if close:
        fixes.append("did you mean " + _quoted([f"{module_part}:{c}" for c in close], " or ")
                     + "?")
    fixes.append(_classes_hint(owner, info))
    return attempt.error(cause, " ".join(fixes))


def _classes_in(module: ModuleType, info: _KindInfo | None) -> list[str]:
    """Classes defined in ``module``; the kind's subclasses first when there are any."""
    defined = [name for name, obj in vars(module).items()
               if inspect.isclass(obj) and obj.__module__ == module.__name__]
    bases = (info.base,) if info else tuple(i.base for i in _KINDS.values())
    drivers = [n for n in defined if issubclass(getattr(module, n), bases)]
    return sorted(drivers) or sorted(defined)


def _classes_hint(module: ModuleType, info: _KindInfo | None) -> str:
    classes = _classes_in(module, info)
    if not classes:
        base = info.base.__name__ if info else "ServiceDriver or DeviceDriver"
        return f"{module.__name__} defines no classes; define your {base} subclass there"
    return f"classes defined in {module.__name__}: {', '.join(classes)}"


# --------------------------------------------------------------------------- checking


def _check_class(attempt: _Attempt, obj: Any, info: _KindInfo) -> type:
    base = info.base.__name__
    if inspect.ismodule(obj):
        classes = _classes_in(obj, info)
        fix = (f"name the class: {_quoted([f'{obj.__name__}:{c}' for c in classes], ', ')}"
               if classes else _classes_hint(obj, info))
        raise attempt.error(f"{obj.__name__!r} is a module ({_file_of(obj)}), not a class", fix)
    if not inspect.isclass(obj):
        hint = ""
        if isinstance(obj, info.base):
            hint = f"; it is an instance: name its class, {type(obj).__name__}, instead"
        raise attempt.error(f"{_describe(obj)} is not a class{hint}",
                            f"point it at a class that subclasses {base}:\n"
                            f"    {info.import_line}\n"
                            f"    class MyDriver({base}): ...")
    if not issubclass(obj, info.base):
        for other in _KINDS.values():
            if other is not info and issubclass(obj, other.base):
                raise attempt.error(
                    f"{_describe(obj)} is a {other.kind} driver (it subclasses "
                    f"{other.base.__name__}), configured as a {info.kind} driver",
                    f"configure it with {other.option}, and name a {base} subclass here")
        bases = ", ".join(b.__name__ for b in obj.__bases__)
        raise attempt.error(
            f"{_describe(obj)} does not subclass {base} (its bases: {bases})",
            f"subclass {base}:\n    {info.import_line}\n    class {obj.__name__}({base}): ...")
    _check_abstract(attempt, obj, info)
    _check_constructor(attempt, obj, info)
    _check_hooks(attempt, obj, info)
    _check_providers(attempt, obj, info)
    return obj


def _check_abstract(attempt: _Attempt, cls: type, info: _KindInfo) -> None:
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if not missing:
        return
    own = [n for n in vars(cls) if callable(vars(cls)[n]) and not n.startswith("__")]
    methods = "method" if len(missing) == 1 else "methods"
    cause = (f"{_describe(cls)} does not implement the abstract {methods} "
             + ", ".join(missing))
    typos = [f"{t!r} (a misspelling of {m!r}?)" for m in missing
             for t in _closest(m, [n for n in own if n not in missing])]
    if typos:
        cause += "; it defines " + ", ".join(typos)
    body = []
    for name in missing:
        func = getattr(cls, name)
        doc = (inspect.getdoc(func) or "").partition("\n")[0]
        body.append(f"    {_def_line(name, func)}")
        body.append(f"        ...  # {doc}" if doc else "        ...")
    raise attempt.error(cause, f"add to class {cls.__name__} ({_where(cls)}):\n"
                        + "\n".join(body) + f"\nwith the imports: {info.import_line}")


def _check_constructor(attempt: _Attempt, cls: type, info: _KindInfo) -> None:
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return  # C-implemented constructors: nothing to inspect; check_driver will try it
    try:
        sig.bind(object())
        return
    except TypeError as err:
        reason = str(err)
    init = next((k.__dict__["__init__"] for k in cls.__mro__ if "__init__" in k.__dict__), None)
    found = f"def __init__{_unbound_signature(init)}" if init else f"{cls.__name__}{sig}"
    at = f" ({_where(init)})" if inspect.isfunction(init) else ""
    raise attempt.error(
        f"the {info.kind} driver is built as {cls.__name__}({info.ctor_param}), one positional "
        f"argument, but {found}{at} cannot be called so: {reason}",
        f"take exactly one argument and pass it on:\n"
        f"    def __init__(self, {info.ctor_param}: {info.ctor_type}) -> None:\n"
        f"        super().__init__({info.ctor_param})\n"
        f"read your settings from {'agent.conf' if info.kind == 'device' else 'configuration'} "
        f"in __init__, or give extra parameters defaults")


def _check_hooks(attempt: _Attempt, cls: type, info: _KindInfo) -> None:
    """Overridden hooks must accept what the base's callers pass (pluggy's signature check)."""
    for name in info.hooks:
        owner = next(k for k in cls.__mro__ if name in k.__dict__)
        if owner in info.base.__mro__:
            continue
        expected = getattr(info.base, name)
        n_args = len(inspect.signature(expected).parameters) - 1
        raw = inspect.getattr_static(cls, name)
        want = _def_line(name, expected)
        if isinstance(raw, staticmethod):
            func, args = raw.__func__, [None] * n_args
        elif isinstance(raw, classmethod):
            func, args = raw.__func__, [cls] + [None] * n_args
        elif inspect.isfunction(raw):
            func, args = raw, [None] * (n_args + 1)
        elif callable(raw):
            continue  # a callable object: trust it
        else:
            raise attempt.error(
                f"{_describe(cls)} sets {name} = {raw!r}, which is not a method",
                f"define it as a method:\n    {want}")
        if inspect.iscoroutinefunction(func):
            raise attempt.error(
                f"{cls.__name__}.{name} ({_where(func)}) is async; "
                f"the {'agent' if info.kind == 'device' else 'server'} calls it from a "
                "worker thread and uses its return value",
                f"make it a plain method:\n    {want}")
        try:
            inspect.signature(func).bind(*args)
        except TypeError as err:
            raise attempt.error(
                f"{cls.__name__}.{name} ({_where(func)}) is def {name}"
                f"{_unbound_signature(func)}, which cannot be called as "
                f"{name}({', '.join(list(inspect.signature(expected).parameters)[1:])}): {err}",
                f"use the base's signature:\n    {want}") from None


def _check_providers(attempt: _Attempt, cls: type, info: _KindInfo) -> None:
    providers = getattr(cls, "providers", None)
    if info.kind != "device" or providers is None:
        return
    if isinstance(providers, (tuple, list, frozenset, set)) and all(
            isinstance(p, str) for p in providers):
        return
    example = f"({providers!r},)" if isinstance(providers, str) else "('strongswan',)"
    raise attempt.error(
        f"{cls.__name__}.providers is {providers!r}; it must be a tuple of provider names "
        "(the <name> field of [service_providers] service_provider) or None for all",
        f"write: providers = {example}")


# --------------------------------------------------------------------------- formatting


def _closest(name: str, candidates: list[str], n: int = 3) -> list[str]:
    """The candidates closest to ``name``, ignoring case (``mydriver`` finds ``MyDriver``).

    Only those nearly as close as the best: ``servise`` suggests ``service``, not also
    ``device``.
    """
    by_lower: dict[str, str] = {}
    for c in candidates:
        by_lower.setdefault(c.lower(), c)
    scored = sorted(((difflib.SequenceMatcher(None, name.lower(), c).ratio(), c)
                     for c in by_lower), key=lambda sc: (-sc[0], sc[1]))
    scored = [(score, c) for score, c in scored if score >= 0.6]
    if not scored:
        return []
    best = scored[0][0]
    return [by_lower[c] for score, c in scored[:n] if score >= best - 0.1]


def _quoted(items: list[str], sep: str) -> str:
    return sep.join(repr(i) for i in items)


def _describe(obj: Any) -> str:
    if inspect.isclass(obj):
        return f"class {obj.__module__}.{obj.__qualname__} ({_where(obj)})"
    if inspect.isfunction(obj):
        return f"function {obj.__module__}.{obj.__qualname__} ({_where(obj)})"
    if inspect.ismodule(obj):
        return f"module {obj.__name__}"
    return f"{type(obj).__name__} {obj!r}"


def _where(obj: Any) -> str:
    """``file:line`` of a class or function, as far as Python can tell."""
    try:
        path = inspect.getsourcefile(obj) or inspect.getfile(obj)
    except TypeError:
        return "built-in"
    try:
        line = inspect.getsourcelines(obj)[1]
    except (OSError, TypeError):
        return str(path)
    return f"{path}:{line}"


def _file_of(module: ModuleType) -> str:
    """The module's file, or a namespace package's folders."""
    return getattr(module, "__file__", None) or ", ".join(getattr(module, "__path__", [])) \
        or "built-in"


def _exc_text(err: BaseException) -> str:
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _annotation(ann: Any) -> str:
    if isinstance(ann, str):
        return ann  # the bases use `from __future__ import annotations`
    if inspect.isclass(ann):
        return ann.__name__
    return inspect.formatannotation(ann)


def _def_line(name: str, func: Callable[..., Any]) -> str:
    """``def sync(self, router: RouterState) -> Statuses:`` from the base's method."""
    sig = inspect.signature(func)
    params = [p.name if p.annotation is p.empty else f"{p.name}: {_annotation(p.annotation)}"
              for p in sig.parameters.values()]
    ret = "" if sig.return_annotation is sig.empty else f" -> {_annotation(sig.return_annotation)}"
    return f"def {name}({', '.join(params)}){ret}:"


def _unbound_signature(func: Any) -> str:
    try:
        return str(inspect.signature(func))
    except (TypeError, ValueError):
        return "(...)"


def _code_roots(module_name: str) -> list[str]:
    """Files and folders of the top-level package ``module_name`` belongs to."""
    top = module_name.partition(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return [str(Path(p)) + "/" for p in spec.submodule_search_locations]
    return [spec.origin] if spec.origin else []


def _driver_frame(tb: TracebackType | None,
                  roots: list[str]) -> traceback.FrameSummary | None:
    """The last frame of ``tb`` in the driver's own code, else the last real frame."""
    frames = [f for f in traceback.extract_tb(tb) if not f.filename.startswith("<frozen")]
    mine = [f for f in frames if any(f.filename == r or f.filename.startswith(r)
                                     for r in roots)]
    return (mine or frames or [None])[-1]


def _frame_text(tb: TracebackType | None, roots: list[str]) -> str:
    """``\\nat FILE:LINE, in FUNC: source`` for the driver's frame (and where it was raised)."""
    frame = _driver_frame(tb, roots)
    if frame is None:
        return ""
    text = f"\nat {frame.filename}:{frame.lineno}, in {frame.name}"
    if frame.line:
        text += f": {frame.line.strip()}"
    last = [f for f in traceback.extract_tb(tb) if not f.filename.startswith("<frozen")][-1]
    if (last.filename, last.lineno) != (frame.filename, frame.lineno):
        text += f" (raised in {last.filename}:{last.lineno})"
    return text


class _CheckServer:
    """A stand-in for the server a service driver is built with; records notifications."""

    def __init__(self) -> None:
        self.notified: list[str] = []

    def notify_router(self, router_id: str) -> None:
        self.notified.append(router_id)
