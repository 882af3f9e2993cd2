"""A strongSwan peer configured by hand, for end-to-end tests: no Isthmus configuration
involved.

:class:`PlainStrongSwan` is the throwaway charon of ``isthmus peer test``
(:class:`isthmus.peers.trial.ThrowawayCharon`: its own ``strongswan.conf`` with
kernel-libipsec, a private directory under ``/tmp``) with a ``swanctl.conf``
written from :class:`SwanConn` parameters (or given whole as ``swanctl_text``),
plus what only tests need: killing charon without a word, dropping inbound ESP::

    peer = PlainStrongSwan("ns-rb", [SwanConn(name="to-a", local_addr=..., ...)])
    peer.start()           # charon up, swanctl --load-all done
    peer.swanctl("--list-sas")
    peer.stop()            # charon killed, iptables rules removed, directory gone

How charon is run (its own mount namespace and ``/run``, the VICI socket) is
described in :mod:`isthmus.peers.trial`.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass

from isthmus.peers.trial import Retransmit, ThrowawayCharon


@dataclass
class SwanConn:
    """One IKEv2 (or IKEv1) PSK connection with one CHILD_SA, in swanctl.conf terms."""

    name: str
    local_addr: str
    remote_addr: str
    local_id: str
    remote_id: str
    psk: str
    local_ts: list[str]
    remote_ts: list[str]
    ike: str = "aes128-sha256-modp2048"       # strongSwan proposal syntax
    esp: str = "aes128-sha256-modp2048"
    version: int = 2
    start_action: str = "none"                 # none | start | trap | trap|start
    close_action: str = "none"
    dpd_action: str = "clear"
    dpd_delay: int = 0                         # seconds; 0: no DPD
    dpd_timeout: int = 0                       # IKEv1 only
    encap: bool = True                         # kernel-libipsec only does ESP in UDP
    rekey_time: str = "0"                      # 0: no IKE rekeying during a test

    def swanctl_conf(self) -> str:
        """This connection's ``connections`` and ``secrets`` blocks."""
        def ts(values: list[str]) -> str:
            return ",".join(values)
        return f"""connections {{
  {self.name} {{
    version = {self.version}
    local_addrs = {self.local_addr}
    remote_addrs = {self.remote_addr}
    proposals = {self.ike}
    encap = {"yes" if self.encap else "no"}
    mobike = no
    rekey_time = {self.rekey_time}
    dpd_delay = {self.dpd_delay}s
    dpd_timeout = {self.dpd_timeout}s
    local {{
      auth = psk
      id = {self.local_id}
    }}
    remote {{
      auth = psk
      id = {self.remote_id}
    }}
    children {{
      {self.name} {{
        mode = tunnel
        local_ts = {ts(self.local_ts)}
        remote_ts = {ts(self.remote_ts)}
        esp_proposals = {self.esp}
        start_action = {self.start_action}
        close_action = {self.close_action}
        dpd_action = {self.dpd_action}
      }}
    }}
  }}
}}
secrets {{
  ike-{self.name} {{
    id-local = {self.local_id}
    id-remote = {self.remote_id}
    secret = "{self.psk}"
  }}
}}
"""


def _sh(*args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=check, capture_output=True, text=True,
                          timeout=timeout)


class PlainStrongSwan(ThrowawayCharon):
    """A charon in ``netns`` with the connections ``conns``; see the module docstring."""

    def __init__(self, netns: str, conns: list[SwanConn], retransmit: Retransmit | None = None,
                 log_level: int = 1, conf_text: str | None = None,
                 swanctl_text: str | None = None) -> None:
        # ``swanctl_text``: a whole swanctl.conf instead of the ``conns``' blocks (e.g. one
        # Isthmus wrote)
        super().__init__(netns, swanctl_text or "", retransmit=retransmit,
                         log_level=log_level)
        # a whole strongswan.conf instead of the rendered one; ``{vici}`` in it is
        # replaced with the VICI socket's path
        self.conf_text = conf_text
        self.conns = conns
        self._from_conns = swanctl_text is None
        self._iptables: list[list[str]] = []

    def write_config(self) -> None:
        """(Re)write strongswan.conf and swanctl.conf from the current parameters."""
        if self._from_conns:
            self.swanctl_text = "".join(conn.swanctl_conf() for conn in self.conns)
        super().write_config()
        if self.conf_text and self.directory is not None:
            (self.directory / "strongswan.conf").write_text(
                self.conf_text.replace("{vici}", self.vici_socket))

    def established(self, conn: str | None = None) -> bool:
        """Whether an IKE_SA (of connection ``conn``, if given) is ESTABLISHED."""
        return any(sa.get("state") == "ESTABLISHED" for name, sa in self.sas().items()
                   if conn is None or name == conn)

    def child_installed(self, conn: str | None = None) -> bool:
        """Whether an IKE_SA (of ``conn``) has an INSTALLED CHILD_SA."""
        return any(child.get("state") == "INSTALLED"
                   for name, sa in self.sas().items() if conn is None or name == conn
                   for child in sa.get("child-sas", {}).values())

    # -- one-way traffic -----------------------------------------------------------------
    def drop_inbound_esp(self) -> None:
        """Drop ESP-in-UDP arriving on port 4500 in this namespace, but not IKE.

        IKE on port 4500 starts with a four-byte zero "non-ESP marker" (RFC 3948),
        an ESP packet with its SPI (never zero): the rule drops UDP to 4500 whose
        first payload word is not zero. Removed by :meth:`allow_inbound_esp` or
        :meth:`stop`.
        """
        rule = ["INPUT", "-p", "udp", "--dport", "4500", "-m", "u32", "!", "--u32",
                "0>>22&0x3C@8=0", "-j", "DROP"]
        _sh("ip", "netns", "exec", self.netns, "iptables", "-w", "-I", *rule)
        self._iptables.append(rule)

    def allow_inbound_esp(self) -> None:
        """Remove the rules :meth:`drop_inbound_esp` added."""
        while self._iptables:
            rule = self._iptables.pop()
            _sh("ip", "netns", "exec", self.netns, "iptables", "-w", "-D", *rule, check=False)

    def esp_dropped(self) -> int:
        """Packets the drop rule matched so far."""
        out = _sh("ip", "netns", "exec", self.netns, "iptables", "-w", "-L", "INPUT", "-v",
                  "-n", "-x", check=False).stdout
        return sum(int(line.split()[0]) for line in out.splitlines()
                   if "u32" in line and "DROP" in line)

    def kill(self) -> None:
        """SIGKILL charon: it vanishes without a Delete (a dead peer); :meth:`stop` still
        cleans up. (:meth:`stop` TERMs it first: charon then deletes its IKE_SAs, telling
        the peer.)"""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Remove the iptables rules, then kill charon and remove its directory."""
        try:
            self.allow_inbound_esp()
        finally:
            super().stop()

    def __enter__(self) -> "PlainStrongSwan":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
