"""Load a driver class from a dotted path or an entry point, and say exactly why it cannot.

Neutron reported every failure as "Can not load driver"; here every failure is one
:class:`DriverLoadError` naming where the spec came from, the dotted path, the cause
(with file and line when there is one) and the fix (with the closest existing names,
or the code to write). The checks run when a driver is loaded, as pluggy checks a
plugin when it is registered, so a broken driver stops the server or agent at start.

This module is the public surface; the work is done, one step per module, by
:mod:`.spec` (spec to module and attribute), :mod:`.diagnose` (import, and why it
failed), :mod:`.contract` (the class against its kind's base), with :mod:`.kinds`,
:mod:`.errors` and :mod:`.messages` shared by all three.
"""

from __future__ import annotations

import inspect
from typing import Any

from oslo_config import cfg

from isthmus import config
from isthmus.drivers.contract import check_class
from isthmus.drivers.device.base import AgentContext
from isthmus.drivers.diagnose import import_attr
from isthmus.drivers.errors import Attempt, DriverLoadError
from isthmus.drivers.kinds import KINDS, Kind, entry_point_names, entry_point_value, kind_info
from isthmus.drivers.messages import code_roots, describe, exc_text, frame_text, where
from isthmus.drivers.spec import resolve

__all__ = ["DriverLoadError", "Kind", "StandInServer", "build_driver", "check_driver",
           "driver_kinds", "entry_point_names", "load_driver", "register_options"]


def load_driver(spec: str, kind: Kind, *, origin: str | None = None) -> type:
    """Import the driver class ``spec`` names and check it fits ``kind``'s base.

    ``spec`` is ``pkg.mod.Class``, ``pkg.mod:Class`` or an entry point name in the
    kind's group (entry points win). ``origin`` says where the spec was written
    (config file and option) and is repeated in every error.
    """
    info = kind_info(kind)
    attempt, module_name, attr = resolve(spec, [info], Attempt(spec, kind, origin))
    obj = import_attr(attempt, module_name, attr, info)
    return check_class(attempt, obj, info)


def check_driver(spec: str, kind: Kind, *, origin: str | None = None) -> Any:
    """Load ``spec`` and build one instance with a stand-in server or agent.

    Catches what only shows at run time: a constructor that raises, options that
    clash with Isthmus's. Both stand-ins carry Isthmus's default configuration (no
    file read). Returns the instance; its ``start()`` is not called (it may touch
    real devices).
    """
    conf = config.load([])
    arg: Any = (AgentContext(host="check", conf=conf) if kind == "device"
                else StandInServer(conf))
    return build_driver(spec, kind, arg, origin=origin)


def build_driver(spec: str, kind: Kind, arg: Any, *, origin: str | None = None) -> Any:
    """Load ``spec`` and build it with ``arg`` (the server, or the agent's context).

    What the server and agent need at start: the driver's ``options`` are registered
    on ``arg.conf`` first (when it is a ConfigOpts), and a constructor that raises
    becomes a :class:`DriverLoadError` naming the line in the driver that failed.
    """
    cls = load_driver(spec, kind, origin=origin)
    info = kind_info(kind)
    attempt = Attempt(spec, kind, origin, entry_point_value(spec, info))
    conf = getattr(arg, "conf", None)
    if isinstance(conf, cfg.ConfigOpts):
        _register_options(attempt, cls, conf)
    try:
        return cls(arg)
    except Exception as err:
        where = frame_text(err.__traceback__, code_roots(cls.__module__))
        advice = ("do device work in start() or sync(), not in __init__: the agent builds "
                  "drivers before it can report anything" if kind == "device" else
                  "keep __init__ cheap and free of I/O: the server builds its service "
                  "drivers at start-up, before it serves requests")
        raise attempt.error(
            f"{cls.__name__}({info.ctor_param}) raised {exc_text(err)}{where}",
            f"make the constructor succeed with only `{info.ctor_param}`; {advice}") from err


def register_options(spec: str, kind: Kind, conf: cfg.ConfigOpts, *,
                     origin: str | None = None) -> None:
    """Load ``spec`` and register its ``options`` on ``conf``, ahead of building it.

    :func:`build_driver` does this itself; call it first only to set a driver's
    options in code (``conf.set_override``) before the server or agent loads it.
    """
    cls = load_driver(spec, kind, origin=origin)
    _register_options(Attempt(spec, kind, origin, entry_point_value(spec, kind_info(kind))),
                      cls, conf)


def driver_kinds(spec: str, *, origin: str | None = None) -> list[Kind]:
    """Which kinds ``spec`` is: the groups an entry point is in, or the class's base.

    Raises :class:`DriverLoadError` (``kind=None``) when ``spec`` cannot be imported or
    names neither a service driver nor a device driver.
    """
    kinds: list[Kind] = [k for k, info in KINDS.items()  # type: ignore[misc]
                         if entry_point_value(spec, info)]
    if kinds:
        return kinds
    attempt, module_name, attr = resolve(spec, list(KINDS.values()),
                                          Attempt(spec, None, origin))
    obj = import_attr(attempt, module_name, attr, None)
    if inspect.isclass(obj):
        for kind, info in KINDS.items():
            if issubclass(obj, info.base):
                return [kind]  # type: ignore[list-item]
    raise attempt.error(
        f"{describe(obj)} is neither a service driver nor a device driver",
        "subclass one of the two bases:\n"
        f"    {KINDS['service'].import_line}   # server side\n"
        f"    {KINDS['device'].import_line}   # agent side\n"
        "or say which it should be with --kind service|device")


def _register_options(attempt: Attempt, cls: type, conf: cfg.ConfigOpts) -> None:
    """Register ``cls.options`` on ``conf`` and read each once (bad values fail here).

    Registering the same option objects again is a no-op (a provider's service and
    device drivers may share them); a different option under a taken name is refused.
    """
    for group, opts in cls.options:  # type: ignore[attr-defined]
        try:
            conf.register_opts(opts, group=group)
        except cfg.DuplicateOptError as err:
            raise attempt.error(
                f"{cls.__name__}.options ({where(cls)}) declares [{group}] {err.opt_name}, "
                "which another definition of that option already holds (Isthmus's own, or "
                "another driver's)",
                f"give your driver a group of its own, e.g. [{cls.__module__.partition('.')[0]}], "
                "or share the other definition's option object") from None
    config.check_values(conf, cls.options)  # type: ignore[attr-defined]


class StandInServer:
    """A stand-in for the server a service driver is built with; records notifications.

    What ``isthmus driver check`` builds service drivers with; a driver's own tests
    can use it too.
    """

    def __init__(self, conf: Any = None) -> None:
        self.conf = conf
        self.notified: list[str] = []

    def notify_router(self, router_id: str) -> None:
        """Record the router; a stand-in server casts nothing."""
        self.notified.append(router_id)
