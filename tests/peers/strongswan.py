"""A strongSwan peer configured by hand, for end-to-end tests: no Isthmus code involved.

:class:`PlainStrongSwan` runs one charon in a network namespace with its own
``strongswan.conf`` (kernel-libipsec: ESP in userspace over a TUN device, for
kernels without ESP) and ``swanctl.conf`` written from :class:`SwanConn`
parameters (or given whole as ``swanctl_text``), all in a private directory under
``/tmp``::

    peer = PlainStrongSwan("ns-rb", [SwanConn(name="to-a", local_addr=..., ...)])
    peer.start()           # charon up, swanctl --load-all done
    peer.swanctl("--list-sas")
    peer.stop()            # charon killed, iptables rules removed, directory gone

charon writes its pid file to the compiled-in ``/var/run/charon.pid``; it runs
in a mount namespace of its own whose ``/run`` is the peer's ``run/``
directory, so several charons (and the host's) never meet. Its VICI socket is
``<dir>/charon.vici``, outside ``/run``, so that ``swanctl`` and ``vici``
reach it from the host's mount namespace.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import vici

CHARON = "/usr/lib/ipsec/charon"
SWANCTL = "/usr/sbin/swanctl"
PLUGINS = ("random nonce openssl aes sha1 sha2 hmac xcbc cmac gmp gcm kdf pem pkcs1 x509 "
           "pubkey socket-default kernel-libipsec kernel-netlink vici")


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


@dataclass
class Retransmit:
    """``charon.retransmit_*``: charon's defaults are 5 tries, 4 s, base 1.8 (about 165 s)."""

    tries: int = 5
    timeout: float = 4.0
    base: float = 1.8


def strongswan_conf(vici_socket: str, retransmit: Retransmit, log_level: int = 1) -> str:
    """A strongswan.conf: the plugins a PSK site-to-site peer needs, kernel-libipsec, VICI
    on ``vici_socket``, the log on stderr at ``log_level`` for every group."""
    return f"""charon {{
  load_modular = no
  load = {PLUGINS}
  install_routes = yes
  retransmit_tries = {retransmit.tries}
  retransmit_timeout = {retransmit.timeout}
  retransmit_base = {retransmit.base}
  plugins {{
    vici {{
      socket = unix://{vici_socket}
    }}
  }}
  filelog {{
    stderr {{
      default = {log_level}
      time_format = %H:%M:%S
    }}
  }}
}}
swanctl {{
  socket = unix://{vici_socket}
}}
"""


def _sh(*args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=check, capture_output=True, text=True,
                          timeout=timeout)


@dataclass
class PlainStrongSwan:
    """A charon in ``netns`` with the connections ``conns``; see the module docstring."""

    netns: str
    conns: list[SwanConn]
    retransmit: Retransmit = field(default_factory=Retransmit)
    log_level: int = 1
    # a whole strongswan.conf instead of :func:`strongswan_conf`'s; ``{vici}`` in it is
    # replaced with the VICI socket's path
    conf_text: str | None = None
    # a whole swanctl.conf instead of the ``conns``' blocks (e.g. one Isthmus wrote)
    swanctl_text: str | None = None
    directory: Path | None = None
    process: subprocess.Popen | None = None
    _iptables: list[list[str]] = field(default_factory=list)

    # -- files -------------------------------------------------------------------------
    @property
    def vici_socket(self) -> str:
        assert self.directory is not None, "not started"
        return str(self.directory / "charon.vici")

    @property
    def log_path(self) -> Path:
        assert self.directory is not None, "not started"
        return self.directory / "charon.log"

    def log(self) -> str:
        """What charon wrote to stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except (OSError, AssertionError):
            return ""

    def write_config(self) -> None:
        """(Re)write strongswan.conf and swanctl.conf from the current parameters."""
        assert self.directory is not None
        conf = (self.conf_text.replace("{vici}", self.vici_socket) if self.conf_text
                else strongswan_conf(self.vici_socket, self.retransmit, self.log_level))
        (self.directory / "strongswan.conf").write_text(conf)
        swanctl = self.swanctl_text if self.swanctl_text is not None else \
            "".join(conn.swanctl_conf() for conn in self.conns)
        path = self.directory / "swanctl.conf"
        path.write_text(swanctl)
        path.chmod(0o600)

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, load: bool = True, timeout_s: float = 15) -> None:
        """Start charon, wait for its VICI socket, then ``swanctl --load-all`` (if ``load``)."""
        # short: the VICI socket's path must fit sun_path (107 bytes)
        self.directory = Path(tempfile.mkdtemp(prefix="ispeer-", dir="/tmp"))
        (self.directory / "run").mkdir()
        self.write_config()
        script = (f'mount --bind "$1/run" /run && '
                  f'exec env -i STRONGSWAN_CONF="$1/strongswan.conf" '
                  f'PATH=/usr/sbin:/usr/bin:/sbin:/bin {CHARON}')
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, "unshare", "-m", "--propagation", "private",
                 "sh", "-c", script, "sh", str(self.directory)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while not self._vici_answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                log_text = self.log()
                self.stop()
                raise RuntimeError(f"charon in {self.netns} did not open its VICI socket; "
                                   f"its log:\n{log_text}")
            time.sleep(0.05)
        if load:
            self.load()

    def _vici_answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(1)
                sock.connect(self.vici_socket)
            return True
        except OSError:
            return False

    def load(self) -> str:
        """``swanctl --load-all`` from the peer's swanctl.conf (after :meth:`write_config`)."""
        return self.swanctl("--load-all", "--file", str(self.directory / "swanctl.conf"))

    def swanctl(self, *args: str, check: bool = True) -> str:
        """Run swanctl against this charon's VICI socket; its standard output."""
        result = subprocess.run(
            [SWANCTL, *args, "--uri", f"unix://{self.vici_socket}"], capture_output=True,
            text=True, timeout=30,
            env={"STRONGSWAN_CONF": str(self.directory / "strongswan.conf"),
                 "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        if check and result.returncode != 0:
            raise RuntimeError(f"swanctl {' '.join(args)}: exit {result.returncode}\n"
                               f"{result.stdout}{result.stderr}")
        return result.stdout

    def session(self) -> vici.Session:
        """A new VICI session on this charon (close it when done: ``.transport.close()``)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.vici_socket)
        return vici.Session(sock)

    def sas(self) -> dict[str, dict]:
        """``list-sas``: {IKE_SA name: its dict, bytes decoded to str}."""
        session = self.session()
        try:
            result: dict[str, dict] = {}
            for entry in session.list_sas():
                for name, sa in entry.items():
                    result[name] = decode(sa)
            return result
        finally:
            session.transport.socket.close()

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
        """Kill charon (TERM, then KILL), remove the iptables rules and the directory."""
        try:
            self.allow_inbound_esp()
        finally:
            if self.process is not None:
                _terminate(self.process)
                self.process = None
            if self.directory is not None:
                shutil.rmtree(self.directory, ignore_errors=True)
                self.directory = None

    def __enter__(self) -> "PlainStrongSwan":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _terminate(process: subprocess.Popen, timeout_s: float = 5) -> None:
    """TERM then KILL the process group ``process`` leads (it was started in a new session)."""
    if process.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=timeout_s)
            return
        except subprocess.TimeoutExpired:
            continue
    process.wait(timeout=timeout_s)


def decode(value):
    """A VICI answer with bytes turned into str, recursively."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value
