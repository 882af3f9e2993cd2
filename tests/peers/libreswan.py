"""libreswan's pluto as an IKE peer Isthmus did not write, for end-to-end tests.

libreswan cannot be installed next to strongSwan (the Debian packages conflict),
so ``scripts/libreswan`` unpacks it and the libraries it lacks into
``/opt/isthmus-test/libreswan`` (:data:`TREE`; ``ISTHMUS_LIBRESWAN`` overrides).
:class:`Pluto` runs that pluto in a network namespace::

    peer = Pluto("ns-rb", PlutoConn(name="to-a", left="198.51.100.12", ...))
    peer.start()            # pluto up, ``ipsec auto --add to-a`` done
    peer.initiate()         # or wait for the other side as responder
    peer.status()           # ``whack --status``
    peer.stop()             # pluto killed, its directory and XFRM state gone

Everything pluto reads or writes is in a private directory under ``/tmp``:
ipsec.conf, ipsec.secrets, ipsec.d, the NSS database (made empty by the
unpacked ``certutil``), ``run/`` (control socket, pid file, core dump
directory) and ``pluto.log``, given to pluto by its options (``--config``,
``--secretsfile``, ``--ipsecdir``, ``--nssdir``, ``--rundir``, ``--dumpdir``).
pluto also runs helpers from its compiled-in ``/usr/libexec/ipsec`` (``_updown``):
it runs in a private mount namespace (``unshare -m`` inside ``ip netns exec``)
where ``/usr/libexec`` is a read-only overlay of the unpacked tree's on the
host's, so nothing on the host changes. DNSSEC is off (``--no-dnssec``: the
root key of ``dns-root-data`` is not there).

This kernel has XFRM but no ESP (``CONFIG_INET_ESP`` unset): pluto negotiates
IKE and then fails to install each CHILD_SA (see tests/peers/data/
charon-log-cases.md for what the other side then sees).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from isthmus.peers.trial import terminate as _terminate

TREE = Path(os.environ.get("ISTHMUS_LIBRESWAN", "/opt/isthmus-test/libreswan"))
ROOT = TREE / "root"
PLUTO = ROOT / "usr/libexec/ipsec/pluto"
WHACK = ROOT / "usr/libexec/ipsec/whack"
IPSEC = ROOT / "usr/sbin/ipsec"
CERTUTIL = ROOT / "usr/bin/certutil"


def missing() -> str | None:
    """Why pluto cannot run here (None when it can): the reason a test skips with."""
    if not PLUTO.exists() or not (TREE / "ld-library-path").exists():
        return (f"libreswan is not unpacked in {TREE}: run scripts/libreswan "
                "(scripts/install --test does)")
    if not Path("/usr/libexec").is_dir():
        return "/usr/libexec is missing: pluto's helpers are overlaid on it"
    return None


def library_path() -> str:
    """LD_LIBRARY_PATH for the unpacked binaries (the libraries the host lacks)."""
    return ":".join((TREE / "ld-library-path").read_text().split())


# strongSwan proposal keywords -> libreswan's (only what differs)
_KEYWORDS = {"sha256": "sha2_256", "sha384": "sha2_384", "sha512": "sha2_512"}


def libreswan_proposal(strongswan: str) -> str:
    """A strongSwan proposal (``aes128-sha256-modp2048``) in libreswan's syntax
    (``aes128-sha2_256-modp2048``)."""
    return "-".join(_KEYWORDS.get(part, part) for part in strongswan.split("-"))


@dataclass
class PlutoConn:
    """One IKEv2 PSK connection, in ipsec.conf terms: ``left`` is pluto's side."""

    name: str
    left: str
    right: str
    leftid: str
    rightid: str
    psk: str
    leftsubnets: list[str]
    rightsubnets: list[str]
    ike: str = "aes128-sha2_256-modp2048"     # libreswan syntax (libreswan_proposal)
    esp: str = "aes128-sha2_256-modp2048"
    dpddelay: int = 0                          # seconds; 0: no liveness checks
    dpdtimeout: int = 0
    dpdaction: str = "clear"
    encapsulation: str = "yes"                 # force ESP in UDP, as kernel-libipsec needs
    retransmit_timeout: int = 60               # total seconds pluto retransmits a request
    extra: dict[str, str] = field(default_factory=dict)   # any other ipsec.conf keyword

    def ipsec_conf(self) -> str:
        """The ``conn`` section (``auto=add``; pluto itself reads only ``config setup``
        from its own file, the conns are loaded by :meth:`Pluto.start`)."""
        def subnets(values: list[str]) -> str:
            return ("subnet=" + values[0]) if len(values) == 1 else \
                ("subnets={" + " ".join(values) + "}")
        lines = [
            f"conn {self.name}",
            "    ikev2=insist",
            "    authby=secret",
            f"    left={self.left}",
            f"    leftid={self.leftid}",
            f"    left{subnets(self.leftsubnets)}",
            f"    right={self.right}",
            f"    rightid={self.rightid}",
            f"    right{subnets(self.rightsubnets)}",
            f"    ike={self.ike}",
            f"    esp={self.esp}",
            f"    encapsulation={self.encapsulation}",
            f"    retransmit-timeout={self.retransmit_timeout}s",
            "    auto=add",
        ]
        if self.dpddelay:
            lines += [f"    dpddelay={self.dpddelay}", f"    dpdtimeout={self.dpdtimeout}",
                      f"    dpdaction={self.dpdaction}"]
        lines += [f"    {key}={value}" for key, value in self.extra.items()]
        return "\n".join(lines) + "\n"

    def secret(self) -> str:
        return f'{self.leftid} {self.rightid} : PSK "{self.psk}"\n'


@dataclass
class Pluto:
    """pluto in ``netns`` with the connections ``conns``; see the module docstring."""

    netns: str
    conns: list[PlutoConn]
    plutodebug: str = "none"                   # e.g. "base" for much more in pluto.log
    # whole ``conn`` sections and ipsec.secrets lines instead of the ``conns``' (e.g. ones
    # Isthmus wrote); the conns named in ``conf_text`` are the ones added
    conf_text: str | None = None
    secrets_text: str | None = None
    directory: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        assert self.directory is not None, "not started"
        return self.directory / "pluto.log"

    def log(self) -> str:
        """What pluto logged so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except (OSError, AssertionError):
            return ""

    @property
    def ctl_socket(self) -> str:
        assert self.directory is not None, "not started"
        return str(self.directory / "run" / "pluto.ctl")

    def _env(self) -> dict[str, str]:
        assert self.directory is not None
        return {"PATH": f"{ROOT}/usr/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
                "LD_LIBRARY_PATH": library_path(),
                "IPSEC_CONF": str(self.directory / "ipsec.conf"),
                "IPSEC_RUNDIR": str(self.directory / "run"),
                "IPSEC_EXECDIR": str(ROOT / "usr/libexec/ipsec"),
                "IPSEC_SBINDIR": str(ROOT / "usr/sbin"),
                "IPSEC_CONFDDIR": str(self.directory / "ipsec.d"),
                "IPSEC_NSSDIR": str(self.directory / "nss")}

    def write_config(self) -> None:
        """(Re)write ipsec.conf and ipsec.secrets from the connections."""
        assert self.directory is not None
        setup = ("config setup\n    logappend=no\n    uniqueids=yes\n"
                 f"    plutodebug={self.plutodebug}\n\n")
        # pluto loads every auto=add conn of its --config at start: it gets the setup only
        (self.directory / "pluto.conf").write_text(setup)
        conns = self.conf_text if self.conf_text is not None else \
            "\n".join(conn.ipsec_conf() for conn in self.conns)
        (self.directory / "ipsec.conf").write_text(setup + conns)
        secrets = self.directory / "ipsec.secrets"
        secrets.write_text(self.secrets_text if self.secrets_text is not None else
                           "".join(conn.secret() for conn in self.conns))
        secrets.chmod(0o600)

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, add: bool = True, timeout_s: float = 15) -> None:
        """Start pluto, wait for its control socket, then ``ipsec auto --add`` each conn."""
        reason = missing()
        if reason:
            raise RuntimeError(reason)
        self.directory = Path(tempfile.mkdtemp(prefix="isplu-", dir="/tmp"))
        for sub in ("run", "ipsec.d", "nss"):
            (self.directory / sub).mkdir()
        self.write_config()
        subprocess.run([str(CERTUTIL), "-N", "-d", f"sql:{self.directory / 'nss'}",
                        "--empty-password"], check=True, capture_output=True, timeout=30,
                       env=self._env())
        d = self.directory
        command = [str(PLUTO), "--nofork", "--stderrlog", "--no-dnssec",
                   "--config", f"{d}/pluto.conf", "--secretsfile", f"{d}/ipsec.secrets",
                   "--ipsecdir", f"{d}/ipsec.d", "--nssdir", f"{d}/nss",
                   "--rundir", f"{d}/run", "--dumpdir", f"{d}/run"]
        script = ('mount -t overlay overlay -o "lowerdir=$1/usr/libexec:/usr/libexec" '
                  '/usr/libexec && shift && exec "$@"')
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, "unshare", "-m", "--propagation", "private",
                 "sh", "-c", script, "sh", str(ROOT), *command],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                env=self._env())
        deadline = time.monotonic() + timeout_s
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                text = self.log()
                self.stop()
                raise RuntimeError(f"pluto in {self.netns} did not start; its log:\n{text}")
            time.sleep(0.05)
        if add:
            for name in self.conn_names():
                self.auto("--add", name)

    def conn_names(self) -> list[str]:
        """The connections' names: the ``conns``', or those ``conf_text`` declares."""
        if self.conf_text is None:
            return [conn.name for conn in self.conns]
        return [line.split()[1] for line in self.conf_text.splitlines()
                if line.startswith("conn ") and len(line.split()) == 2]

    def _answers(self) -> bool:
        if not os.path.exists(self.ctl_socket):
            return False
        result = subprocess.run([str(WHACK), "--ctlsocket", self.ctl_socket, "--status"],
                                capture_output=True, timeout=10, env=self._env())
        return result.returncode == 0

    def ipsec(self, *args: str, check: bool = True, timeout_s: float = 30) -> str:
        """Run the unpacked ``ipsec`` command on this pluto (config, control socket, NSS)."""
        result = subprocess.run(["ip", "netns", "exec", self.netns, str(IPSEC), *args],
                                capture_output=True, text=True, timeout=timeout_s,
                                env=self._env())
        if check and result.returncode != 0:
            raise RuntimeError(f"ipsec {' '.join(args)}: exit {result.returncode}\n"
                               f"{result.stdout}{result.stderr}")
        return result.stdout + result.stderr

    def auto(self, *args: str, check: bool = True) -> str:
        """``ipsec auto ARGS`` on this pluto's ipsec.conf and control socket (without
        ``--config``, addconn would read the host's /etc/ipsec.conf)."""
        assert self.directory is not None, "not started"
        return self.ipsec("auto", "--config", str(self.directory / "ipsec.conf"),
                          "--ctlsocket", self.ctl_socket, *args, check=check)

    def whack(self, *args: str, check: bool = True, timeout_s: float = 30) -> str:
        """Run ``whack --ctlsocket <ours> ARGS``; its output."""
        result = subprocess.run([str(WHACK), "--ctlsocket", self.ctl_socket, *args],
                                capture_output=True, text=True, timeout=timeout_s,
                                env=self._env())
        if check and result.returncode != 0:
            raise RuntimeError(f"whack {' '.join(args)}: exit {result.returncode}\n"
                               f"{result.stdout}{result.stderr}")
        return result.stdout + result.stderr

    def initiate(self, name: str | None = None) -> None:
        """Start negotiating ``name`` (default: the first connection); returns at once."""
        self.whack("--name", name or self.conn_names()[0], "--initiate", "--asynchronous")

    def delete(self, name: str | None = None) -> str:
        """Delete the connection's SAs, telling the peer: ``whack --terminate``."""
        return self.whack("--name", name or self.conn_names()[0], "--terminate")

    def status(self) -> str:
        """``whack --status``: connections and states."""
        return self.whack("--status")

    def ike_established(self) -> bool:
        """Whether pluto holds an established IKE SA (``ESTABLISHED_IKE_SA``)."""
        return "ESTABLISHED_IKE_SA" in self.whack("--showstates", check=False)

    def kill(self) -> None:
        """SIGKILL pluto: it vanishes without a Delete (a dead peer); :meth:`stop` still
        cleans up. (:meth:`stop` TERMs it first: pluto then deletes its SAs, telling the peer.)"""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Kill pluto (TERM, then KILL), flush the namespace's XFRM state and policies
        (pluto's, if it was killed before removing them) and remove its directory."""
        try:
            if self.process is not None:
                _terminate(self.process)
                self.process = None
                for what in ("state", "policy"):
                    subprocess.run(["ip", "-n", self.netns, "xfrm", what, "flush"],
                                   capture_output=True, timeout=10)
        finally:
            if self.directory is not None:
                shutil.rmtree(self.directory, ignore_errors=True)
                self.directory = None

    def __enter__(self) -> "Pluto":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
