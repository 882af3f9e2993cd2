"""``isthmus up --physical-network NAME:DEVICE``: the embedded default with real routers.

Without ``--physical-network`` ``isthmus up`` runs the noop device driver,
unprivileged: statuses are simulated. With it (as root) the agent in the same
process builds each router (``docs/routers.md``: a namespace, a veth into a
bridge or a macvlan on a plain interface, addresses, routes, SNAT) and runs the
strongSwan driver, both through a privileged helper whose configuration is
written under the data directory (``isthmus.demo.privileged.write_config``).
On exit the charons, the router namespaces and the helper's daemon are stopped
and removed; the database keeps the routers, which the next start builds again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from isthmus.lifecycle import StartupError

CHARON = "/usr/lib/ipsec/charon"

# A throwaway SA: esp4 (and the algorithms) present, or "Requested type not found".
_ESP_PROBE = ["xfrm", "state", "add", "src", "192.0.2.1", "dst", "192.0.2.2", "proto", "esp",
              "spi", "0x100", "mode", "tunnel", "enc", "cbc(aes)", "0x" + "11" * 16,
              "auth-trunc", "hmac(sha256)", "0x" + "22" * 32, "128"]


@dataclass
class RealRouters:
    """What ``isthmus up --physical-network`` set up, to describe and to tear down."""

    data_dir: Path
    rootwrap_config: Path
    physical_networks: dict[str, str]
    kernel_libipsec: bool
    libipsec_detected: bool

    def describe(self) -> str:
        """The start-up line's part about the agent's mode."""
        nets = ",".join(f"{n}:{d}" for n, d in self.physical_networks.items())
        esp = ("kernel-libipsec: this kernel has no ESP/XFRM" if self.libipsec_detected
               else "kernel-libipsec" if self.kernel_libipsec else "kernel ESP")
        return f"; real routers on {nets}, strongSwan driver ({esp})"

    def stop(self) -> None:
        """Stop charons, delete the router namespaces, stop the privileged daemon."""
        from isthmus.agent.routers import RouterBuilder
        from isthmus.demo import privileged
        from isthmus.demo.sites import stop_charons_under
        from isthmus.privileged import Client

        try:
            stop_charons_under(self.data_dir)
            with Client(config_path=str(self.rootwrap_config)) as client:
                RouterBuilder(client, self.physical_networks).cleanup(keep=())
        finally:
            privileged.stop_daemon(self.rootwrap_config)


def check_root(euid: int | None = None) -> None:
    """StartupError (one line: why and what to do) unless running as root."""
    if (os.geteuid() if euid is None else euid) != 0:
        raise StartupError(
            "--physical-network builds routers (namespaces, devices, charon) and needs root: "
            "run `sudo .venv/bin/isthmus up --physical-network ...`, or leave "
            "--physical-network out for simulated statuses")


def kernel_has_esp() -> bool:
    """Whether the kernel can hold an ESP SA (XFRM and esp4), tried in a throwaway namespace."""
    ns = f"ism-esp-probe-{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", ns], capture_output=True).returncode != 0:
        return False
    try:
        return subprocess.run(["ip", "-n", ns, *_ESP_PROBE], capture_output=True).returncode == 0
    finally:
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True)


def preflight(entries: list[str]) -> dict[str, str]:
    """The ``--physical-network`` entries as a mapping, checked before anything is touched.

    Raises StartupError (bad NAME:DEVICE, not root, strongSwan or iptables missing).
    """
    from isthmus.agent.routers import BadPhysicalNetworks, parse_physical_networks

    try:
        physical_networks = parse_physical_networks(entries)
    except BadPhysicalNetworks as err:
        raise StartupError(str(err).replace("[vpnagent] physical_networks", "--physical-network")) from None
    check_root()
    if not os.path.exists(CHARON):
        raise StartupError("strongSwan is not installed (no /usr/lib/ipsec/charon): run "
                           "scripts/install, or apt-get install strongswan-charon "
                           "strongswan-swanctl libcharon-extra-plugins "
                           "libstrongswan-standard-plugins")
    if shutil.which("iptables") is None:
        raise StartupError("iptables is not installed (routers' SNAT needs it): run "
                           "scripts/install, or apt-get install iptables")
    return physical_networks


def enable(conf: Any, data_dir: Path, physical_networks: dict[str, str],
           kernel_libipsec: bool) -> RealRouters:
    """Switch ``conf`` to real routers (``preflight``'s mapping) and the strongSwan driver."""
    from isthmus.demo import privileged
    from isthmus.demo.run import apply_settings, strongswan_settings

    detected = not kernel_libipsec and not kernel_has_esp()
    rootwrap = privileged.write_config(data_dir / "privileged")
    settings = strongswan_settings(rootwrap)
    del settings["vpnagent.status_check_interval"]   # the demo's quick poll; keep the default
    settings.update({
        "strongswan.kernel_libipsec": kernel_libipsec or detected,
        "vpnagent.physical_networks": [f"{n}:{d}" for n, d in physical_networks.items()],
        "vpnagent.rootwrap_config": str(rootwrap),
    })
    apply_settings(conf, settings)
    return RealRouters(data_dir, rootwrap, physical_networks, kernel_libipsec or detected, detected)
