"""Record what OUR charon says on its VICI event stream when an IKE peer misbehaves.

Run by hand, as root, from the repository (a few minutes; nothing is left behind)::

    .venv/bin/python -m tests.peers.record_cases [--only CASE ...] [--out DIR]

OUR side is a charon configured as Isthmus configures one: the strongswan.conf
of ``isthmus-charon`` (``launcher.render_conf(libipsec=True)``: its plugins,
``retransmit_tries = 3``, ``retransmit_timeout = 1.0``, ``retransmit_base =
1.5``, ``filelog stderr default = 1``) with only the VICI socket moved, and the
connection the device driver loads (``mapping.to_vici`` of a site connection,
then ``encap = yes`` as the driver sets for kernel-libipsec; ``mapping.
shared_secret``). The connection is bi-directional (``start_action =
trap|start``, ``close_action = start``), IKEv2, PSK, DPD every 2 s (action
restart), unless a case says otherwise (``response-only`` when we are the
responder). OUR charon runs in router a of :class:`isthmus.demo.sites.Sites`,
the peer in router b: libreswan's pluto (:class:`tests.peers.libreswan.Pluto`)
or a hand-configured strongSwan (:class:`tests.peers.strongswan.PlainStrongSwan`).

A listener subscribed with ``vici.Session.listen(["log", "ike-updown",
"child-updown", "ike-rekey", "child-rekey"])`` before the connection is loaded
records every event, all of its keys, with the time since the load. Output:
``tests/peers/data/charon-log-cases.json`` (every event) and
``charon-log-cases.md`` (the log messages per case, and findings written by
hand in FINDINGS below).
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from isthmus.demo.sites import LAN, WAN, Sites
from isthmus.drivers.device.strongswan import launcher, mapping
from tests.peers.libreswan import Pluto, PlutoConn, libreswan_proposal
from isthmus.peers.trial import decode
from tests.peers.strongswan import PlainStrongSwan, SwanConn

DATA = Path(__file__).with_name("data")
PSK = "record-cases-secret"
EVENTS = ["log", "ike-updown", "child-updown", "ike-rekey", "child-rekey"]
OURS = "aes128-sha256-modp2048"
OTHER = "aes256-sha512-modp4096"
OUR_ID, PEER_ID = "@a1.example", "@b1.example"


def our_connection(initiator: str = "bi-directional", ike: dict | None = None,
                   ipsec: dict | None = None) -> dict[str, Any]:
    """A site connection as the agent receives it (docs/rpc.md), from a to b."""
    policy = {"auth_algorithm": "sha256", "encryption_algorithm": "aes-128",
              "pfs": "group14", "lifetime": {"units": "seconds", "value": 3600}}
    return {"id": "c1", "name": "a-to-b", "admin_state_up": True, "status": "PENDING_CREATE",
            "peer_address": WAN["b"], "peer_id": PEER_ID, "local_id": OUR_ID, "mtu": 1500,
            "initiator": initiator, "psk": PSK,
            "dpd": {"action": "restart", "interval": 2, "timeout": 10},
            "ikepolicy": {**policy, "ike_version": "v2", "phase1_negotiation_mode": "main",
                          **(ike or {})},
            "ipsecpolicy": {**policy, "transform_protocol": "esp",
                            "encapsulation_mode": "tunnel", **(ipsec or {})},
            "local_cidrs": [f"{LAN['a']}.0/24"], "peer_cidrs": [f"{LAN['b']}.0/24"],
            "local_ip_version": 4, "external_ip": WAN["a"]}


def our_conf() -> str:
    """isthmus-charon's strongswan.conf (kernel-libipsec), VICI on our own socket."""
    text = launcher.render_conf(libipsec=True)
    assert "unix:///run/charon.vici" in text
    return text.replace("unix:///run/charon.vici", "unix://{vici}")


@dataclass
class Peer:
    """What runs in router b: its kind and how it deviates from a matching config."""

    kind: str                       # "pluto" | "strongswan"
    ike: str = OURS
    esp: str = OURS
    psk: str = PSK
    expects_id: str = OUR_ID        # the id the peer expects for us
    own_id: str = PEER_ID
    local_subnet: str = f"{LAN['b']}.0/24"
    remote_subnet: str = f"{LAN['a']}.0/24"
    initiates: bool = False

    def build(self, ns: str):
        if self.kind == "pluto":
            return Pluto(ns, [PlutoConn(
                name="b-to-a", left=WAN["b"], right=WAN["a"], leftid=self.own_id,
                rightid=self.expects_id, psk=self.psk, leftsubnets=[self.local_subnet],
                rightsubnets=[self.remote_subnet], ike=libreswan_proposal(self.ike),
                esp=libreswan_proposal(self.esp), dpddelay=2, dpdtimeout=10,
                retransmit_timeout=10)])
        return PlainStrongSwan(ns, [SwanConn(
            name="b-to-a", local_addr=WAN["b"], remote_addr=WAN["a"], local_id=self.own_id,
            remote_id=self.expects_id, psk=self.psk, local_ts=[self.local_subnet],
            remote_ts=[self.remote_subnet], ike=self.ike, esp=self.esp,
            start_action="start" if self.initiates else "none", dpd_delay=2)])


@dataclass
class Case:
    name: str                       # e.g. "b-ike-mismatch"
    title: str
    peer: Peer | None               # None: nobody at the peer's address
    initiator: str = "bi-directional"   # ours; "response-only" when we are the responder
    ike: dict = field(default_factory=dict)      # our IKE policy overrides
    ipsec: dict = field(default_factory=dict)
    seconds: float = 8              # how long to record after loading
    # done after the IKE SA is up (peer, sites, ours) -> None; then record `after` seconds
    action: Callable[..., None] | None = None
    after: float = 0
    snapshot: bool = False          # keep our list-sas once established
    conf_edit: Callable[[str], str] | None = None   # changes to our strongswan.conf

    @property
    def role(self) -> str:
        return "responder" if self.initiator == "response-only" else "initiator"


class Listener(threading.Thread):
    """Collects the events of one charon from before the load until :meth:`finish`."""

    def __init__(self, charon: PlainStrongSwan):
        super().__init__(daemon=True)
        self.session = charon.session()
        self.events: list[dict[str, Any]] = []
        self.t0 = time.monotonic()
        self.done = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        stream = self.session.listen(EVENTS, timeout=0.2)
        try:
            for kind, message in stream:   # the first next() registers, then yields
                self.ready.set()
                if kind is not None:
                    self.events.append({"t": round(time.monotonic() - self.t0, 3),
                                        "event": kind.decode(), **decode(message)})
                if self.done.is_set():
                    break
        finally:
            stream.close()
            self.session.transport.socket.close()

    def finish(self) -> list[dict[str, Any]]:
        self.done.set()
        self.join(timeout=5)
        return self.events


def wait(check: Callable[[], Any], seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    value = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    return value


def run_case(case: Case) -> dict[str, Any]:
    """One case in fresh namespaces; returns its events and list-sas snapshots."""
    sites = Sites(prefix="irc" + uuid.uuid4().hex[:5])
    ours = peer = None
    result: dict[str, Any] = {"case": case.name, "title": case.title, "role": case.role,
                              "peer": case.peer.kind if case.peer else "none"}
    try:
        sites.create()
        if case.peer is not None:
            peer = case.peer.build(sites.ns("rb"))
            peer.start()
        conf = our_conf()
        if case.conf_edit is not None:
            conf = case.conf_edit(conf)
            result["our_conf"] = conf
        ours = PlainStrongSwan(sites.ns("ra"), [], conf_text=conf)
        ours.start(load=False)
        listener = Listener(ours)
        listener.start()
        listener.ready.wait(5)
        conn = our_connection(case.initiator, case.ike, case.ipsec)
        body = mapping.to_vici({}, conn)
        body[mapping.connection_name(conn["id"])]["encap"] = "yes"   # as the driver does
        listener.t0 = time.monotonic()
        session = ours.session()
        try:
            session.load_shared(mapping.shared_secret({}, conn))
            session.load_conn(body)
        finally:
            session.transport.socket.close()
        if peer is not None and case.peer.initiates and isinstance(peer, Pluto):
            peer.initiate()
        if case.action is not None:
            up = wait(lambda: ours.established(), 10)
            result["up_before_action"] = bool(up)
            if case.snapshot:
                time.sleep(1.5)   # a few DPD exchanges and pings' worth of counters
                sites.ping("ha", f"{LAN['b']}.2", count=2)
                result["list_sas"] = ours.sas()
            result["action_at"] = round(time.monotonic() - listener.t0, 3)
            case.action(peer, sites, ours)
            time.sleep(case.after)
        else:
            time.sleep(case.seconds)
            if case.snapshot:
                result["list_sas"] = ours.sas()
        result["list_sas_at_end"] = ours.sas()
        result["events"] = listener.finish()
        result["our_log"] = ours.log()
        if peer is not None:
            result["peer_log"] = peer.log()[-20000:]
    finally:
        for p in (ours, peer):
            if p is not None:
                p.stop()
        sites.destroy()
    return result


def stop_peer(peer, sites, ours) -> None:
    peer.stop()


def kill_peer(peer, sites, ours) -> None:
    peer.kill()


def peer_deletes_ike(peer, sites, ours) -> None:
    if isinstance(peer, Pluto):
        peer.delete()
    else:
        peer.swanctl("--terminate", "--ike", "b-to-a", "--timeout", "5", check=False)


def peer_deletes_child(peer, sites, ours) -> None:
    peer.swanctl("--terminate", "--child", "b-to-a", "--timeout", "5", check=False)


def cases() -> list[Case]:
    out: list[Case] = []
    for kind in ("pluto", "strongswan"):
        out += [
            Case(f"a-match/{kind}", "matching proposals, ids, PSK, subnets", Peer(kind),
                 seconds=6, snapshot=True),
            Case(f"b-ike-mismatch/{kind}", f"we offer IKE {OURS}, the peer only {OTHER}",
                 Peer(kind, ike=OTHER), seconds=6),
            Case(f"c-esp-mismatch/{kind}", f"IKE matches; we offer ESP {OURS}, the peer only "
                 f"{OTHER}", Peer(kind, esp=OTHER), seconds=6),
            Case(f"d-wrong-psk/{kind}", "the peer has another PSK", Peer(kind, psk="other"),
                 seconds=6),
            Case(f"e-id-mismatch/{kind}", "the peer expects @wrong.example for us",
                 Peer(kind, expects_id="@wrong.example"), seconds=6),
            Case(f"f-ts-mismatch/{kind}", "the peer's subnets are 10.79.0.0/24 <-> "
                 "10.78.0.0/24 (ours 10.71.0.0/24 <-> 10.72.0.0/24)",
                 Peer(kind, local_subnet="10.79.0.0/24", remote_subnet="10.78.0.0/24"),
                 seconds=6),
            Case(f"g-peer-killed/{kind}", "the peer is killed (SIGKILL: no Delete) after the "
                 "IKE SA is up; DPD every 2 s", Peer(kind), action=kill_peer, after=16),
            Case(f"g-peer-stopped/{kind}", "the peer is stopped (SIGTERM: it sends a Delete) "
                 "after the IKE SA is up", Peer(kind), action=stop_peer, after=12),
            Case(f"h-peer-deletes-ike/{kind}", "the peer deletes the IKE SA", Peer(kind),
                 action=peer_deletes_ike, after=5),
        ]
    out.append(Case("h-peer-deletes-child/strongswan", "the peer deletes the CHILD SA only",
                    Peer("strongswan"), action=peer_deletes_child, after=5))
    # which levels reach the VICI log stream, whatever filelog says
    for level in (-1, 4):
        out.append(Case(f"z-vici-levels/filelog-{level}", f"matching; filelog stderr default "
                        f"= {level} instead of Isthmus' 1", Peer("strongswan"), seconds=3,
                        conf_edit=lambda text, level=level: text.replace(
                            "default = 1", f"default = {level}")))
    out.append(Case("g-peer-never-there/none", "nobody answers at the peer's address",
                    None, seconds=16))
    # we are the responder: the peer initiates, our connection is response-only
    for kind in ("strongswan", "pluto"):
        for name, title, peer in (
                ("a-match", "matching", Peer(kind)),
                ("b-ike-mismatch", f"the peer offers IKE {OTHER}", Peer(kind, ike=OTHER)),
                ("c-esp-mismatch", f"the peer offers ESP {OTHER}", Peer(kind, esp=OTHER)),
                ("d-wrong-psk", "the peer has another PSK", Peer(kind, psk="other")),
                ("e-id-mismatch", "the peer sends another id (@wrong.example) than we expect",
                 Peer(kind, own_id="@wrong.example")),
                ("f-ts-mismatch", "the peer proposes 10.79.0.0/24 <-> 10.78.0.0/24",
                 Peer(kind, local_subnet="10.79.0.0/24", remote_subnet="10.78.0.0/24"))):
            peer.initiates = True
            out.append(Case(f"{name}/{kind}/responder", title, peer,
                            initiator="response-only", seconds=5))
    return out


def flat_entries(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per event: case, side (our role), peer, then every key of the event."""
    entries = []
    for result in results:
        for event in result.get("events", []):
            entries.append({"case": result["case"], "side": f"ours ({result['role']})",
                            "peer": result["peer"], **event})
    return entries


GENERATED = "## Recorded events"
_FILELOG = re.compile(r"^\S+ \d+\[(\w+)\] (.*)$")


def _updown_line(event: dict[str, Any]) -> str:
    """An updown/rekey event in one line: which SA, its state, its child SAs' states."""
    parts = []
    for name, sa in event.items():
        if isinstance(sa, dict):
            children = ", ".join(f"{cname} {child.get('state')}"
                                 for cname, child in sa.get("child-sas", {}).items())
            parts.append(f"{name}[{sa.get('uniqueid')}] {sa.get('state')}"
                         + (f" (children: {children})" if children else ""))
    up = event.get("up")
    return (f"up={up} " if up else "") + "; ".join(parts)


def _vici_only_missing(result: dict[str, Any]) -> list[str]:
    """Lines of our filelog (stderr, level <= 1 there) that never came on the VICI stream."""
    on_vici = {e.get("msg") for e in result.get("events", []) if e["event"] == "log"}
    missing = []
    for line in result.get("our_log", "").splitlines():
        match = _FILELOG.match(line)
        if match and match.group(2) not in on_vici and match.group(1) not in ("DMN", "LIB", "JOB"):
            missing.append(f"{match.group(1)}: {match.group(2)}")
    return missing


def markdown(results: list[dict[str, Any]]) -> str:
    """The generated part of charon-log-cases.md: every case's events, in order."""
    out = [GENERATED, "",
           "Generated by `tests/peers/record_cases.py`; `t` is seconds since our "
           "`load-conn` (initiator cases) or since it (responder cases, the peer initiates "
           "right after). `lvl` is the VICI `level`; every log event also carries `thread`, "
           "`ikesa-name`, `ikesa-uniqueid` (when an IKE SA is involved), see the JSON.", ""]
    for result in results:
        out += [f"### {result['case']}", "",
                f"{result['title']}. Peer: {result['peer']}; we are the {result['role']}.", ""]
        if "action_at" in result:
            out += [f"Action (see the case name) at t={result['action_at']}s "
                    f"(IKE SA up before it: {result.get('up_before_action')}).", ""]
        out.append("```")
        for e in result.get("events", []):
            if e["event"] == "log":
                sa = f" {e.get('ikesa-name')}[{e.get('ikesa-uniqueid')}]" \
                    if e.get("ikesa-name") else ""
                out.append(f"{e['t']:7.3f} {e['group']} {e['level']:>2}{sa}  {e['msg']}")
            else:
                body = {k: v for k, v in e.items() if k not in ("t", "event")}
                out.append(f"{e['t']:7.3f} ** {e['event']}: {_updown_line(body)}")
        out.append("```")
        missing = _vici_only_missing(result)
        if missing:
            out += ["", "In our charon's filelog but not on the VICI stream:", "", "```",
                    *missing, "```"]
        final = result.get("list_sas_at_end") or {}
        out += ["", "`list-sas` at the end: " + (", ".join(
            f"{name}[{sa.get('uniqueid')}] {sa.get('state')} with "
            f"{len(sa.get('child-sas', {}))} CHILD_SA(s)" for name, sa in final.items())
            or "nothing"), ""]
    return "\n".join(out) + "\n"


def write_markdown(results: list[dict[str, Any]], path: Path) -> None:
    """Replace the generated part of ``path``, keeping the hand-written text above it."""
    head = ""
    if path.exists():
        head = path.read_text().split(GENERATED)[0]
    path.write_text(head + markdown(results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", help="case names (prefixes) to run")
    parser.add_argument("--out", type=Path, default=DATA)
    parser.add_argument("--markdown-from", type=Path, metavar="RAW_JSON",
                        help="only rewrite the markdown from a charon-log-cases-raw.json")
    args = parser.parse_args(argv)
    if args.markdown_from:
        write_markdown(json.loads(args.markdown_from.read_text()),
                       args.out / "charon-log-cases.md")
        return 0
    selected = [c for c in cases()
                if not args.only or any(c.name.startswith(o) for o in args.only)]
    results = []
    for case in selected:
        started = time.monotonic()
        print(f"{case.name}: {case.title} ...", flush=True)
        results.append(run_case(case))
        print(f"  {len(results[-1].get('events', []))} events, "
              f"{time.monotonic() - started:.1f}s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "charon-log-cases-raw.json").write_text(json.dumps(results, indent=1))
    (args.out / "charon-log-cases.json").write_text(json.dumps(flat_entries(results), indent=1))
    write_markdown(results, args.out / "charon-log-cases.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
