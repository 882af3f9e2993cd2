"""The two kinds of driver, service and device: what differs between them, their entry points."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Literal

from isthmus.drivers.device.base import DeviceDriver
from isthmus.drivers.service.base import ServiceDriver

Kind = Literal["service", "device"]

__all__ = ["KINDS", "Kind", "KindInfo", "entry_point_names", "entry_point_value", "kind_info"]


@dataclass(frozen=True)
class KindInfo:
    """What differs between the two kinds of driver, for loading and for messages."""

    kind: str
    group: str
    base: type
    import_line: str
    ctor_param: str
    ctor_type: str
    option: str
    hooks: tuple[str, ...]


KINDS: dict[str, KindInfo] = {
    "service": KindInfo(
        kind="service", group="isthmus.vpn.service_drivers", base=ServiceDriver,
        import_line="from isthmus.drivers.service import Change, ServiceDriver",
        ctor_param="server", ctor_type="DriverServer",
        option="[service_providers] service_provider", hooks=("validate", "changed")),
    "device": KindInfo(
        kind="device", group="isthmus.vpn.device_drivers", base=DeviceDriver,
        import_line="from isthmus.drivers.device import DeviceDriver, RouterState, Statuses",
        ctor_param="agent", ctor_type="AgentContext",
        option="[vpnagent] vpn_device_driver", hooks=("sync", "poll", "start", "stop")),
}


def kind_info(kind: str) -> KindInfo:
    """What a driver of ``kind`` (``service`` or ``device``) must be and where it registers."""
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"kind must be 'service' or 'device', not {kind!r}") from None


def entry_point_value(spec: str, info: KindInfo) -> str | None:
    """The ``module:Class`` an installed entry point named ``spec`` points to, if any."""
    values = sorted({ep.value for ep in entry_points(group=info.group, name=spec)})
    return values[0] if values else None


def entry_point_names(kind: Kind) -> list[str]:
    """The entry point names installed in ``kind``'s group, sorted."""
    return sorted({ep.name for ep in entry_points(group=kind_info(kind).group)})
