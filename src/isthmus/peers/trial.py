"""A throwaway strongSwan peer: a network namespace on the router's external network
and a charon in it, for ``isthmus peer test`` (root).

:class:`PeerNetwork` is the peer's wiring::

    host:  BRIDGE ── <ptX>h ══ veth ══ eth0 (peer_address/prefix)   namespace isthmus-peertest-X
           (or a plain interface: a macvlan in mode bridge on it named eth0, like the
            agent's router ports on plain interfaces, docs/routers.md)
                                        lo: one address (/32) in each peer CIDR

:class:`ThrowawayCharon` runs one charon in that namespace with kernel-libipsec
(ESP in userspace over a TUN device: works whether or not the kernel has ESP),
a ``strongswan.conf`` rendered from ``templates/trial.strongswan.conf.template``
and the ``swanctl.conf`` it is given, all in a private directory under ``/tmp``.
charon writes its pid file to the compiled-in ``/var/run/charon.pid``; it runs
in a mount namespace of its own whose ``/run`` is that directory's ``run/``, so
it never meets the agent's charons or the host's. Its VICI socket is
``<dir>/charon.vici``, outside ``/run``, reachable from the host's mount namespace.

Both undo everything they made in ``stop``/``destroy``, which are safe to call
twice and after a half-done start.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import socket
import string
import struct
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import vici

from isthmus.privileged import syscalls

CHARON = "/usr/lib/ipsec/charon"
SWANCTL = "/usr/sbin/swanctl"
PLUGINS = ("random nonce openssl aes sha1 sha2 hmac xcbc cmac gmp gcm kdf pem pkcs1 x509 "
           "pubkey socket-default kernel-libipsec kernel-netlink vici")
"""What a PSK site-to-site peer needs: the proposals' crypto, kernel-libipsec, VICI."""

NAMESPACE_PREFIX = "isthmus-peertest-"
"""Every throwaway peer's namespace starts with it: ``ip netns list | grep`` finds leftovers."""

_CONF = string.Template(
    (Path(__file__).with_name("templates") / "trial.strongswan.conf.template").read_text())
_ENV_PATH = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"


class TrialError(RuntimeError):
    """The throwaway peer could not be set up; the message says what failed and why."""


@dataclass(frozen=True)
class Retransmit:
    """``charon.retransmit_*``. charon's defaults (5 tries, 4 s, base 1.8) wait about
    165 s before giving up; a trial wants an answer within its timeout."""

    tries: int = 5
    timeout: float = 4.0
    base: float = 1.8


def strongswan_conf(vici_socket: str, retransmit: Retransmit, log_level: int = 1) -> str:
    """A strongswan.conf for one throwaway charon: :data:`PLUGINS`, kernel-libipsec, VICI
    on ``vici_socket``, the log on stderr at ``log_level`` for every group."""
    return _CONF.substitute(plugins=PLUGINS, vici_socket=vici_socket,
                            retransmit_tries=retransmit.tries,
                            retransmit_timeout=retransmit.timeout,
                            retransmit_base=retransmit.base, log_level=log_level)


def _sh(*args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run a command (no shell); failing raises :class:`TrialError` with its own words."""
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise TrialError(f"{' '.join(args)}: exit {result.returncode}: "
                         f"{(result.stderr or result.stdout).strip()}")
    return result


class ThrowawayCharon:
    """One charon in network namespace ``netns`` loaded with ``swanctl_text``; see the
    module docstring."""

    def __init__(self, netns: str, swanctl_text: str = "", *,
                 retransmit: Retransmit | None = None, log_level: int = 1) -> None:
        self.netns = netns
        self.swanctl_text = swanctl_text
        self.retransmit = retransmit or Retransmit()
        self.log_level = log_level
        self.directory: Path | None = None
        self.process: subprocess.Popen | None = None

    @property
    def vici_socket(self) -> str:
        """The path of charon's VICI socket (in the private directory)."""
        assert self.directory is not None, "not started"
        return str(self.directory / "charon.vici")

    @property
    def log_path(self) -> Path:
        """charon's stderr log."""
        assert self.directory is not None, "not started"
        return self.directory / "charon.log"

    def log(self) -> str:
        """What charon wrote so far ("" before start and after stop)."""
        try:
            return self.log_path.read_text(errors="replace")
        except (OSError, AssertionError):
            return ""

    def write_config(self) -> None:
        """(Re)write strongswan.conf and swanctl.conf (0600: it holds the PSK)."""
        assert self.directory is not None, "not started"
        (self.directory / "strongswan.conf").write_text(
            strongswan_conf(self.vici_socket, self.retransmit, self.log_level))
        path = self.directory / "swanctl.conf"
        path.touch(mode=0o600)
        path.write_text(self.swanctl_text)

    def start(self, load: bool = True, timeout_s: float = 15) -> None:
        """Start charon, wait for its VICI socket, then ``swanctl --load-all`` (if ``load``).

        Raises :class:`TrialError` with charon's log when it does not come up."""
        # short: the VICI socket's path must fit sun_path (107 bytes)
        self.directory = Path(tempfile.mkdtemp(prefix="ispeer-", dir="/tmp"))
        (self.directory / "run").mkdir()
        self.write_config()
        script = (f'mount --bind "$1/run" /run && '
                  f'exec env -i STRONGSWAN_CONF="$1/strongswan.conf" {_ENV_PATH} {CHARON}')
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
                raise TrialError(f"charon in {self.netns} did not open its VICI socket; "
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
        """``swanctl --load-all`` from the swanctl.conf; raises :class:`TrialError` with
        swanctl's words when charon refuses it."""
        assert self.directory is not None, "not started"
        return self.swanctl("--load-all", "--file", str(self.directory / "swanctl.conf"))

    def swanctl(self, *args: str, check: bool = True) -> str:
        """Run swanctl against this charon's VICI socket; its standard output."""
        assert self.directory is not None, "not started"
        result = subprocess.run(
            [SWANCTL, *args, "--uri", f"unix://{self.vici_socket}"], capture_output=True,
            text=True, timeout=30,
            env={"STRONGSWAN_CONF": str(self.directory / "strongswan.conf"),
                 "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        if check and result.returncode != 0:
            raise TrialError(f"swanctl {' '.join(args)}: exit {result.returncode}\n"
                             f"{result.stdout}{result.stderr}")
        return result.stdout

    def session(self) -> vici.Session:
        """A new VICI session on this charon (close it: ``.transport.socket.close()``)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.vici_socket)
        return vici.Session(sock)

    def sas(self) -> dict[str, dict]:
        """``list-sas``: {IKE_SA name: its dict, bytes decoded to str}."""
        session = self.session()
        try:
            return {name: decode(sa) for entry in session.list_sas()
                    for name, sa in entry.items()}
        finally:
            session.transport.socket.close()

    def initiate(self, child: str) -> None:
        """Start negotiating CHILD_SA ``child`` (and its IKE_SA) without waiting for it:
        what the peer's own traffic does to a ``start_action = trap`` child."""
        session = self.session()
        try:
            for _ in session.initiate({"child": child, "timeout": -1}):
                pass
        except vici.exception.CommandException:
            pass   # an answer only says it did not finish: the SAs are watched instead
        finally:
            session.transport.socket.close()

    def stop(self) -> None:
        """Kill charon (TERM: it deletes its SAs, telling the router; then KILL) and remove
        the directory."""
        if self.process is not None:
            terminate(self.process)
            self.process = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


def terminate(process: subprocess.Popen, timeout_s: float = 5) -> None:
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


def decode(value: Any) -> Any:
    """A VICI answer with bytes turned into str, recursively."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


# -- the network ---------------------------------------------------------------------------

_ETH_P_ARP = 0x0806
_BROADCAST = b"\xff" * 6


@dataclass
class PeerNetwork:
    """The throwaway peer's namespace, uplink and peer-CIDR addresses; see the module
    docstring. :meth:`create` refuses (:class:`AddressInUse`) when something on the
    uplink already answers ARP for the peer's address."""

    uplink: str                        # a Linux bridge, or a plain interface (macvlan)
    address: ipaddress.IPv4Interface   # peer_address with the external subnet's prefix
    peer_cidrs: tuple[str, ...]
    short: str = ""

    def __post_init__(self) -> None:
        self.short = self.short or uuid.uuid4().hex[:6]
        self.created: list[str] = []   # what destroy() undoes: "netns", "host-end"

    @property
    def namespace(self) -> str:
        """``isthmus-peertest-<6 hex digits>``."""
        return NAMESPACE_PREFIX + self.short

    @property
    def host_end(self) -> str:
        """The veth's end on the bridge (``ipt-<hex>``; none for a macvlan)."""
        return f"ipt-{self.short}"

    @property
    def is_bridge(self) -> bool:
        """Whether :attr:`uplink` is a Linux bridge (else a plain interface)."""
        return os.path.isdir(f"/sys/class/net/{self.uplink}/bridge")

    def peer_addresses(self) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
        """One address in each peer CIDR, as a host address (/32, /128) on ``lo`` (no
        dummy device: not every kernel has the module): the first host of the CIDR."""
        found = []
        for cidr in self.peer_cidrs:
            network = ipaddress.ip_network(cidr, strict=False)
            host = next(iter(network.hosts()), network.network_address)
            found.append(ipaddress.ip_interface(host))
        return found

    def create(self, probe_s: float = 1.5) -> None:
        """Namespace, uplink, ARP probe for :attr:`address`, then the addresses."""
        if not os.path.exists(f"/sys/class/net/{self.uplink}"):
            raise TrialError(f"no interface {self.uplink!r} on this host: give the bridge "
                             f"(or interface) that carries the router's external network")
        ns = self.namespace
        _sh("ip", "netns", "add", ns)
        self.created.append("netns")
        _sh("ip", "-n", ns, "link", "set", "lo", "up")
        if self.is_bridge:
            _sh("ip", "link", "add", self.host_end, "type", "veth", "peer", "name", "eth0",
                "netns", ns)
            self.created.append("host-end")
            _sh("ip", "link", "set", self.host_end, "master", self.uplink, "up")
        else:   # made in the host namespace, where its parent lives, straight into ours
            _sh("ip", "link", "add", "link", self.uplink, "name", "eth0", "netns", ns,
                "type", "macvlan", "mode", "bridge")
        _sh("ip", "-n", ns, "link", "set", "eth0", "up")
        if arp_answers(ns, "eth0", self.address.ip, probe_s):
            raise AddressInUse(self.address.ip, self.uplink)
        _sh("ip", "-n", ns, "addr", "add", str(self.address), "dev", "eth0")
        for address in self.peer_addresses():
            extra = ["nodad"] if address.version == 6 else []
            _sh("ip", "-n", ns, "addr", "add", str(address), "dev", "lo", *extra)

    def destroy(self) -> None:
        """Kill whatever still runs in the namespace, delete it (its veth end or macvlan
        goes with it) and the veth's host end if something kept the namespace alive."""
        if "netns" in self.created:
            for pid in _sh("ip", "netns", "pids", self.namespace, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            _sh("ip", "netns", "del", self.namespace, check=False)
        if "host-end" in self.created and os.path.exists(f"/sys/class/net/{self.host_end}"):
            _sh("ip", "link", "del", self.host_end, check=False)
        self.created.clear()

    def removal_commands(self) -> list[str]:
        """What an operator runs to remove it by hand (after ``--keep``)."""
        commands = [f"ip netns pids {self.namespace} | xargs -r kill",
                    f"ip netns del {self.namespace}"]
        if "host-end" in self.created:
            commands.append(f"ip link del {self.host_end} 2>/dev/null")
        return commands


class AddressInUse(TrialError):
    """Something on the uplink answers ARP for the address the throwaway peer would take
    (the real peer is there already, or another host): taking it would break them."""

    def __init__(self, address: ipaddress.IPv4Address, uplink: str) -> None:
        self.address = address
        super().__init__(
            f"{address} already answers on {uplink}: the real peer (or another host) has "
            f"that address; the throwaway peer would take it over. Test while it is "
            f"unplugged, or test the real peer itself")


def arp_answers(netns: str, device: str, address: ipaddress.IPv4Address,
                wait_s: float) -> bool:
    """Whether anything answers an ARP probe (RFC 5227: sender address 0.0.0.0, so no
    neighbour learns anything) for ``address``, sent on ``device`` in ``netns``.

    The raw socket is opened from a throwaway thread that entered the namespace
    (sockets stay in the namespace they were made in; ``setns`` moves one thread)."""
    if address.version != 4:
        raise TrialError(f"peer_address {address} is IPv6: only IPv4 peers can be tested")
    made: dict[str, Any] = {}

    def open_in_namespace() -> None:
        try:
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                syscalls.setns(fd, syscalls.CLONE_NEWNET, f"entering namespace {netns}")
            finally:
                os.close(fd)
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ARP))
            sock.bind((device, _ETH_P_ARP))
            made["socket"] = sock
        except OSError as err:
            made["error"] = err
    thread = threading.Thread(target=open_in_namespace, name=f"arp-probe-{netns}")
    thread.start()
    thread.join()
    if "error" in made:
        raise TrialError(f"ARP probe for {address} on {device}: {made['error']}")
    sock: socket.socket = made["socket"]
    with sock:
        mac = sock.getsockname()[4]
        target = address.packed
        request = (_BROADCAST + mac + struct.pack("!H", _ETH_P_ARP) +
                   struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + b"\0" * 4 +
                   b"\0" * 6 + target)
        deadline = time.monotonic() + wait_s
        next_send = 0.0
        while (now := time.monotonic()) < deadline:
            if now >= next_send:
                sock.send(request)
                next_send = now + wait_s / 3
            sock.settimeout(max(0.01, min(deadline, next_send) - now))
            try:
                frame = sock.recv(128)
            except socket.timeout:
                continue
            if _is_arp_from(frame, target, mac):
                return True
    return False


def _is_arp_from(frame: bytes, address: bytes, own_mac: bytes) -> bool:
    """Whether ``frame`` is an ARP packet sent by another host that holds ``address``
    (a reply, or its own probe or announcement)."""
    if len(frame) < 42 or frame[12:14] != struct.pack("!H", _ETH_P_ARP):
        return False
    sender_mac, sender_ip = frame[22:28], frame[28:32]
    return sender_mac != own_mac and sender_ip == address
