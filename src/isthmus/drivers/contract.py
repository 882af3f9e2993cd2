"""Check that a class keeps its kind's contract, as pluggy checks a plugin at registration.

Base class, abstract methods (with the code to add), constructor, hook signatures,
``providers``, ``options``: each mismatch names the file and line and what to write instead.
"""

from __future__ import annotations

import inspect
from typing import Any

from oslo_config import cfg

from isthmus.drivers.diagnose import classes_hint, classes_in
from isthmus.drivers.errors import Attempt
from isthmus.drivers.kinds import KINDS, KindInfo
from isthmus.drivers.messages import (closest, def_line, describe, file_of, quoted,
                                      unbound_signature, where)

__all__ = ["check_class"]


def check_class(attempt: Attempt, obj: Any, info: KindInfo) -> type:
    """``obj`` if it is a class that can serve as a driver of ``info``'s kind, else the
    load error that says what it is and what to name instead."""
    base = info.base.__name__
    if inspect.ismodule(obj):
        classes = classes_in(obj, info)
        fix = (f"name the class: {quoted([f'{obj.__name__}:{c}' for c in classes], ', ')}"
               if classes else classes_hint(obj, info))
        raise attempt.error(f"{obj.__name__!r} is a module ({file_of(obj)}), not a class", fix)
    if not inspect.isclass(obj):
        hint = ""
        if isinstance(obj, info.base):
            hint = f"; it is an instance: name its class, {type(obj).__name__}, instead"
        raise attempt.error(f"{describe(obj)} is not a class{hint}",
                            f"point it at a class that subclasses {base}:\n"
                            f"    {info.import_line}\n"
                            f"    class MyDriver({base}): ...")
    if not issubclass(obj, info.base):
        for other in KINDS.values():
            if other is not info and issubclass(obj, other.base):
                raise attempt.error(
                    f"{describe(obj)} is a {other.kind} driver (it subclasses "
                    f"{other.base.__name__}), configured as a {info.kind} driver",
                    f"configure it with {other.option}, and name a {base} subclass here")
        bases = ", ".join(b.__name__ for b in obj.__bases__)
        raise attempt.error(
            f"{describe(obj)} does not subclass {base} (its bases: {bases})",
            f"subclass {base}:\n    {info.import_line}\n    class {obj.__name__}({base}): ...")
    _check_abstract(attempt, obj, info)
    _check_constructor(attempt, obj, info)
    _check_hooks(attempt, obj, info)
    _check_providers(attempt, obj, info)
    _check_options(attempt, obj)
    return obj


def _check_abstract(attempt: Attempt, cls: type, info: KindInfo) -> None:
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if not missing:
        return
    own = [n for n in vars(cls) if callable(vars(cls)[n]) and not n.startswith("__")]
    methods = "method" if len(missing) == 1 else "methods"
    cause = (f"{describe(cls)} does not implement the abstract {methods} "
             + ", ".join(missing))
    typos = [f"{t!r} (a misspelling of {m!r}?)" for m in missing
             for t in closest(m, [n for n in own if n not in missing])]
    if typos:
        cause += "; it defines " + ", ".join(typos)
    body = []
    for name in missing:
        func = getattr(cls, name)
        doc = (inspect.getdoc(func) or "").partition("\n")[0]
        body.append(f"    {def_line(name, func)}")
        body.append(f"        ...  # {doc}" if doc else "        ...")
    raise attempt.error(cause, f"add to class {cls.__name__} ({where(cls)}):\n"
                        + "\n".join(body) + f"\nwith the imports: {info.import_line}")


def _check_constructor(attempt: Attempt, cls: type, info: KindInfo) -> None:
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
    found = f"def __init__{unbound_signature(init)}" if init else f"{cls.__name__}{sig}"
    at = f" ({where(init)})" if inspect.isfunction(init) else ""
    raise attempt.error(
        f"the {info.kind} driver is built as {cls.__name__}({info.ctor_param}), one positional "
        f"argument, but {found}{at} cannot be called so: {reason}",
        f"take exactly one argument and pass it on:\n"
        f"    def __init__(self, {info.ctor_param}: {info.ctor_type}) -> None:\n"
        f"        super().__init__({info.ctor_param})\n"
        f"read your settings from {'agent.conf' if info.kind == 'device' else 'configuration'} "
        f"in __init__, or give extra parameters defaults")


def _check_hooks(attempt: Attempt, cls: type, info: KindInfo) -> None:
    """Overridden hooks must accept what the base's callers pass (pluggy's signature check)."""
    for name in info.hooks:
        owner = next(k for k in cls.__mro__ if name in k.__dict__)
        if owner in info.base.__mro__:
            continue
        expected = getattr(info.base, name)
        n_args = len(inspect.signature(expected).parameters) - 1
        raw = inspect.getattr_static(cls, name)
        want = def_line(name, expected)
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
                f"{describe(cls)} sets {name} = {raw!r}, which is not a method",
                f"define it as a method:\n    {want}")
        if inspect.iscoroutinefunction(func):
            raise attempt.error(
                f"{cls.__name__}.{name} ({where(func)}) is async; "
                f"the {'agent' if info.kind == 'device' else 'server'} calls it from a "
                "worker thread and uses its return value",
                f"make it a plain method:\n    {want}")
        try:
            inspect.signature(func).bind(*args)
        except TypeError as err:
            raise attempt.error(
                f"{cls.__name__}.{name} ({where(func)}) is def {name}"
                f"{unbound_signature(func)}, which cannot be called as "
                f"{name}({', '.join(list(inspect.signature(expected).parameters)[1:])}): {err}",
                f"use the base's signature:\n    {want}") from None


def _check_providers(attempt: Attempt, cls: type, info: KindInfo) -> None:
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


def _check_options(attempt: Attempt, cls: type) -> None:
    """``options`` must be ``[(group, [Opt, ...])]``: the loader registers it as such."""
    options = getattr(cls, "options", ())
    shape_ok = isinstance(options, (tuple, list)) and all(
        isinstance(pair, (tuple, list)) and len(pair) == 2 and isinstance(pair[0], str)
        and isinstance(pair[1], (tuple, list)) and all(isinstance(o, cfg.Opt) for o in pair[1])
        for pair in options)
    if shape_ok:
        return
    raise attempt.error(
        f"{cls.__name__}.options is {options!r}; it must be a list of (group name, list of "
        "oslo.config options) pairs",
        "write, with a group of your driver's own:\n"
        "    from oslo_config import cfg\n"
        '    options = [("mydriver", [cfg.StrOpt("endpoint", help="...")])]')
