"""Why a strongSwan tunnel is what it is: charon's words mapped to Isthmus's reason codes.

Two sources, both over the router's VICI socket:

- ``list-sas``: the IKE and CHILD SA states and what was negotiated
  (:func:`sa_details`);
- the ``log`` event stream (and ``ike-updown``/``child-updown``): charon's own
  messages, mapped to the reason codes of :mod:`isthmus.diagnosis` by the one
  table :data:`RULES` (``tests/strongswan/test_explain.py`` runs every row of it,
  with messages recorded from real charons against libreswan and strongSwan
  peers, ``tests/peers/data/``).

An :class:`Explainer` per router keeps what the messages said (the last failure
of each connection, and the proposals a peer sent, until the failure they
explain) and builds each connection's :class:`~isthmus.diagnosis.StatusDetail`.
Messages may name proposals, identities and selectors; charon never logs a PSK.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping

from isthmus.diagnosis import Failure, SAInfo, StatusDetail, detail

ONE_WAY_AFTER_S = 10.0


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def iso(at: float) -> str:
    """Seconds since the epoch as ISO 8601 UTC (what the API shows)."""
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Expectation:
    """What a connection was configured with, to name it in messages."""

    peer: str = "?"
    ike_proposals: tuple[str, ...] = ()
    esp_proposals: tuple[str, ...] = ()
    local_id: str = "?"
    peer_id: str = "?"
    local_ts: tuple[str, ...] = ()
    remote_ts: tuple[str, ...] = ()

    @classmethod
    def of(cls, spec: Mapping[str, Any]) -> "Expectation":
        """From a connection's ``load-conn`` body (the value under its name)."""
        children = list((spec.get("children") or {}).values())
        first = children[0] if children else {}
        return cls(peer=", ".join(spec.get("remote_addrs") or ["?"]),
                   ike_proposals=tuple(spec.get("proposals") or ()),
                   esp_proposals=tuple(first.get("esp_proposals") or
                                       first.get("ah_proposals") or ()),
                   local_id=(spec.get("local") or {}).get("id", "?"),
                   peer_id=(spec.get("remote") or {}).get("id", "?"),
                   local_ts=tuple(first.get("local_ts") or ()),
                   remote_ts=tuple(first.get("remote_ts") or ()))


@dataclass
class Context:
    """What one connection's messages said so far, for the rules' messages."""

    expected: Expectation
    established: bool = False      # the IKE SA the message is about is (was) established
    established_ids: set[str] = field(default_factory=set)   # unique ids of such IKE SAs
    received_proposals: str | None = None   # the peer's, when it sent them (we answer)
    configured_proposals: str | None = None
    retransmitting: int | None = None       # the message ID of the request being retransmitted


# A rule: (pattern on charon's message, reason code, message builder). The first rule
# whose pattern matches wins; None as the code means "remember, but no failure".
Build = Callable[[re.Match[str], Context], str]
RULES: list[tuple[re.Pattern[str], str | None, Build]] = []


def rule(pattern: str, code: str | None) -> Callable[[Build], Build]:
    """Add a row to :data:`RULES` (in the order of this module)."""
    def add(build: Build) -> Build:
        RULES.append((re.compile(pattern), code, build))
        return build
    return add


def _ours(proposals: tuple[str, ...]) -> str:
    return ", ".join(proposals) or "?"


def _peers(ctx: Context) -> str:
    return f"; the peer proposed {ctx.received_proposals}" if ctx.received_proposals else ""


@rule(r"^received proposals: (?P<p>.*)$", None)
def _received(m: re.Match[str], ctx: Context) -> str:
    ctx.received_proposals = m["p"]
    return ""


@rule(r"^configured proposals: (?P<p>.*)$", None)
def _configured(m: re.Match[str], ctx: Context) -> str:
    ctx.configured_proposals = m["p"]
    return ""


@rule(r"^received NO_PROPOSAL_CHOSEN (?:notify error|error notify)", "ike_proposal_mismatch")
def _ike_refused(m: re.Match[str], ctx: Context) -> str:
    # IKEv1 says "error notify" in both phases; IKEv2 names its CHILD_SA case apart.
    if ctx.established:
        return _esp_refused(m, ctx)
    return (f"the peer accepted none of our IKE proposals ({_ours(ctx.expected.ike_proposals)})"
            " and answered NO_PROPOSAL_CHOSEN")


@rule(r"^received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built", "esp_proposal_mismatch")
def _esp_refused(m: re.Match[str], ctx: Context) -> str:
    return (f"IKE is up, but the peer accepted none of our ESP proposals "
            f"({_ours(ctx.expected.esp_proposals)}) and answered NO_PROPOSAL_CHOSEN")


@rule(r"^no (?:acceptable )?proposal (?:found|chosen)|^received proposals unacceptable|^no IKE config found for .*"
      r"sending NO_PROPOSAL_CHOSEN", "ike_proposal_mismatch")
def _no_ike_proposal(m: re.Match[str], ctx: Context) -> str:
    phase = "ESP" if ctx.established else "IKE"
    ours = ctx.expected.esp_proposals if ctx.established else ctx.expected.ike_proposals
    return f"none of the peer's {phase} proposals is acceptable to us (ours: " \
           f"{_ours(ours)}){_peers(ctx)}"


@rule(r"^received AUTHENTICATION_FAILED (?:notify error|error notify)|"
      r"^invalid HASH_V1 payload length, decryption failed|^integrity check failed",
      "authentication_failed")
def _auth_refused(m: re.Match[str], ctx: Context) -> str:
    return (f"the peer rejected our authentication (AUTHENTICATION_FAILED): the PSK or the "
            f"identities differ (we are {ctx.expected.local_id}, we expect the peer to be "
            f"{ctx.expected.peer_id})")


@rule(r"^tried \d+ shared keys? for '(?P<a>[^']*)' - '(?P<b>[^']*)', but MAC mismatched",
      "authentication_failed")
def _psk_mismatch(m: re.Match[str], ctx: Context) -> str:
    return f"the peer's authentication failed: the PSK for {m['a']} - {m['b']} differs"


@rule(r"^no shared key found for '(?P<a>[^']*)' - '(?P<b>[^']*)'", "authentication_failed")
def _no_psk(m: re.Match[str], ctx: Context) -> str:
    return f"the peer identifies as {m['b']}, which is not the peer_id we expect " \
           f"({ctx.expected.peer_id}): no key for {m['a']} - {m['b']}"


@rule(r"^constraint check failed: identity '(?P<id>[^']*)' required", "authentication_failed")
def _wrong_peer_id(m: re.Match[str], ctx: Context) -> str:
    return f"the peer did not authenticate as {m['id']} (our peer_id)"


@rule(r"^no matching peer config found|^looking for peer configs matching .* found 0",
      "authentication_failed")
def _no_peer_config(m: re.Match[str], ctx: Context) -> str:
    return (f"the peer's identities match no connection of ours (we are "
            f"{ctx.expected.local_id}, we expect {ctx.expected.peer_id})")


@rule(r"^received TS_UNACCEPTABLE notify, no CHILD_SA built", "traffic_selectors_unacceptable")
def _ts_refused(m: re.Match[str], ctx: Context) -> str:
    return (f"the peer refused the traffic selectors {_ours(ctx.expected.local_ts)} === "
            f"{_ours(ctx.expected.remote_ts)} (TS_UNACCEPTABLE): its subnets differ, or it "
            f"could not install the CHILD SA (libreswan answers TS_UNACCEPTABLE then)")


@rule(r"^(?:no acceptable traffic selectors found|traffic selectors (?P<ts>.*) unacceptable)",
      "traffic_selectors_unacceptable")
def _ts_unacceptable(m: re.Match[str], ctx: Context) -> str:
    theirs = f" {m['ts']}" if m["ts"] else ""
    return (f"the peer's traffic selectors{theirs} do not fit ours "
            f"{_ours(ctx.expected.local_ts)} === {_ours(ctx.expected.remote_ts)}")


@rule(r"^received (?P<n>INTERNAL_ADDRESS_FAILURE|FAILED_CP_REQUIRED|SINGLE_PAIR_REQUIRED|"
      r"INVALID_SELECTORS|TEMPORARY_FAILURE|CHILD_SA_NOT_FOUND|NO_ADDITIONAL_SAS) notify",
      "peer_device_failed")
def _peer_child_error(m: re.Match[str], ctx: Context) -> str:
    return f"the peer could not set up the CHILD SA (it answered {m['n']})"


@rule(r"^unable to install (?P<what>.*) in kernel", "local_device_failed")
def _local_install(m: re.Match[str], ctx: Context) -> str:
    return f"this host could not install the {m['what']} (kernel IPsec support?)"


@rule(r"^retransmit \d+ of request with message ID (?P<id>\d+)$", "peer_not_responding")
def _retransmit(m: re.Match[str], ctx: Context) -> str:
    ctx.retransmitting = int(m["id"])
    return f"no answer from {ctx.expected.peer} to IKE_SA_INIT: retransmitting"


@rule(r"^giving up after (?P<n>\d+) retransmits", "retransmits_exhausted")
def _gave_up(m: re.Match[str], ctx: Context) -> str:
    return f"no answer from {ctx.expected.peer} after {m['n']} retransmits"


@rule(r"^establishing IKE_SA failed, peer not responding", "peer_not_responding")
def _not_responding(m: re.Match[str], ctx: Context) -> str:
    return f"no answer from {ctx.expected.peer} to IKE_SA_INIT"


@rule(r"^received DELETE for (?P<what>IKE_SA|ESP CHILD_SA|AH CHILD_SA)", "peer_deleted")
def _deleted(m: re.Match[str], ctx: Context) -> str:
    return f"the peer deleted the {m['what'].replace('ESP ', '').replace('AH ', '')}"


@rule(r"^received (?P<n>[A-Z_]+) (?:notify error|error notify)", "configuration_rejected")
def _other_error(m: re.Match[str], ctx: Context) -> str:
    return f"the peer answered with the error {m['n']}"


# A reason that does not replace the one before it (code -> the codes it would hide).
_STICKY = {"peer_not_responding": ("dead_peer", "peer_not_responding")}

_LOADED = re.compile(r"^added vici connection: (?P<name>\S+)")
_ESTABLISHED = re.compile(r"^IKE_SA \S+\[\d+\] established between")


def _remember_established(ctx: Context, uniqueid: str) -> None:
    ctx.established_ids.add(uniqueid)
    ctx.established = True
    if len(ctx.established_ids) > 64:   # unique ids only grow: drop the oldest
        ctx.established_ids.discard(min(ctx.established_ids, key=lambda u: int(u) if u.isdigit() else 0))


_INITIATING = re.compile(r"^(?P<addr>\S+) is initiating an? .*IKE_SA")

def classify(message: str, ctx: Context) -> tuple[str, str] | None:
    """The reason code and message of one charon log message (None: not a failure)."""
    for pattern, code, build in RULES:
        m = pattern.search(message)
        if m is None:
            continue
        text = build(m, ctx)
        if code is None:
            return None
        if code == "ike_proposal_mismatch" and ctx.established:
            code = "esp_proposal_mismatch"
        if code == "peer_not_responding" and message.startswith("retransmit") and \
                (ctx.established or ctx.retransmitting != 0):
            return None   # a request on an established SA: a failure only if it runs out
        if code == "retransmits_exhausted":
            if ctx.established:
                code, text = "dead_peer", f"{text}: the peer stopped answering (dead peer)"
            elif ctx.retransmitting == 0:
                code, text = "peer_not_responding", f"{text} to IKE_SA_INIT"
            ctx.retransmitting = None
        return code, text
    return None


# --------------------------------------------------------------------------------------
# list-sas


def _algorithm(sa: Mapping[str, Any], key: str) -> str | None:
    name = sa.get(f"{key}-alg")
    if name is None:
        return None
    size = sa.get(f"{key}-keysize")
    return f"{_text(name)}-{_text(size)}" if size is not None else _text(name)


Stamps = dict[tuple[str, str, Any, str], tuple["str | None", "str | None"]]


def _sa_info(sa: Mapping[str, Any], now: float, kind: str, stamps: Stamps,
             seen: set[tuple[str, str, Any, str]]) -> SAInfo:
    info: SAInfo = {"state": _text(sa.get("state", "?"))}
    for key, name in (("encr", "encryption"), ("integ", "integrity"), ("prf", "prf")):
        value = _algorithm(sa, key)
        if value:
            info[name] = value  # type: ignore[literal-required]
    if "dh-group" in sa:
        info["dh_group"] = _text(sa["dh-group"])
    if kind == "ike":
        if "version" in sa:
            info["version"] = int(_text(sa["version"]))
        ours = "initiator" if _text(sa.get("initiator", "no")) == "yes" else "responder"
        theirs = "responder" if ours == "initiator" else "initiator"
        if f"{ours}-spi" in sa:
            info["local_spi"] = _text(sa[f"{ours}-spi"])
            info["remote_spi"] = _text(sa.get(f"{theirs}-spi", ""))
        since = sa.get("established")
    else:
        info["protocol"] = _text(sa.get("protocol", "ESP"))
        info["mode"] = _text(sa.get("mode", "TUNNEL"))
        if "spi-in" in sa:
            info["local_spi"] = _text(sa["spi-in"])
            info["remote_spi"] = _text(sa.get("spi-out", ""))
        since = sa.get("install-time")
    # charon counts seconds from now: the same SA read a second later would show other
    # times. They are fixed the first time an SA (by its unique id) is seen.
    key = (kind, _text(sa.get("uniqueid", "")), info.get("local_spi"), info["state"])
    times = stamps.get(key)
    if times is None:
        times = stamps[key] = (
            iso(now - int(_text(since))) if since is not None else None,
            iso(now + int(_text(sa["rekey-time"]))) if "rekey-time" in sa else None)
    seen.add(key)
    if times[0]:
        info["established_at"] = times[0]
    if times[1]:
        info["rekey_at"] = times[1]
    return info


@dataclass
class SASnapshot:
    """One connection's SAs as ``list-sas`` showed them."""

    ike: SAInfo | None = None
    child: SAInfo | None = None
    one_way: bool = False        # outbound packets recently, none inbound for a while


def sa_details(entries: list[Mapping[str, Any]], now: float,
               one_way_after_s: float = ONE_WAY_AFTER_S,
               stamps: Stamps | None = None) -> dict[str, SASnapshot]:
    """``{connection name: SASnapshot}`` from ``list-sas`` entries: the best IKE SA (an
    established one first) and its best CHILD SA (an installed one first). ``stamps``
    keeps each SA's times from one call to the next (entries of SAs gone are dropped).

    One-way: an installed CHILD SA sent a packet within ``one_way_after_s`` but has
    received none for longer (``use-in``/``use-out``: seconds since the last packet)."""
    found: dict[str, SASnapshot] = {}
    stamps = {} if stamps is None else stamps
    seen: set[tuple[str, str, Any, str]] = set()
    for entry in entries:
        for name, ike in entry.items():
            name = _text(name)
            snap = found.setdefault(name, SASnapshot())
            ike_state = _text(ike.get("state", ""))
            if snap.ike is not None and snap.ike.get("state") == "ESTABLISHED" and \
                    ike_state != "ESTABLISHED":
                continue
            snap.ike = _sa_info(ike, now, "ike", stamps, seen)
            children = list((ike.get("child-sas") or {}).values())
            children.sort(key=lambda c: _text(c.get("state", "")) != "INSTALLED")
            if children:
                child = children[0]
                snap.child = _sa_info(child, now, "child", stamps, seen)
                if _text(child.get("state", "")) == "INSTALLED":
                    snap.one_way = _one_way(child, one_way_after_s)
    for key in set(stamps) - seen:
        del stamps[key]
    return found


def _one_way(child: Mapping[str, Any], after_s: float) -> bool:
    def seconds(key: str) -> float | None:
        return float(_text(child[key])) if key in child else None
    use_out, use_in = seconds("use-out"), seconds("use-in")
    age = seconds("install-time") or 0.0
    if use_out is None or use_out > after_s:
        return False      # nothing going out lately: nothing to say
    if use_in is None:
        return age > after_s
    return use_in > after_s


# --------------------------------------------------------------------------------------
# Per router


@dataclass
class _Connection:
    context: Context
    failure: Failure | None = None      # the last one
    current: tuple[str, str] | None = None   # the failure that explains the present state
    one_way_since: float | None = None


@dataclass
class Explainer:
    """What charon said of one router's connections, and their details from it."""

    one_way_after_s: float = ONE_WAY_AFTER_S
    clock: Callable[[], float] = time.time
    _connections: dict[str, _Connection] = field(default_factory=dict)
    _unnamed: dict[str, str] = field(default_factory=dict)   # IKE SA unique id -> peer address
    # Log events are numbered as they come; an IKE SA is dated by the first event naming
    # it, a connection by the last time charon said it loaded it. An SA older than its
    # connection's load was negotiated under the configuration before: its failures are
    # not this configuration's (a peer's SA caught in the middle of a reload).
    _seq: int = 0
    _first_seen: dict[str, int] = field(default_factory=dict)
    _loaded_at: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def expect(self, specs: Mapping[str, Mapping[str, Any]]) -> None:
        """The connections loaded now, ``{name: load-conn body}``; others are forgotten."""
        with self._lock:
            for name in list(self._connections):
                if name not in specs:
                    del self._connections[name]
            for name, spec in specs.items():
                expected = Expectation.of(spec)
                known = self._connections.get(name)
                if known is None:
                    self._connections[name] = _Connection(Context(expected))
                elif known.context.expected != expected:   # reconfigured: a fresh start
                    known.context = Context(expected)
                    known.current = None

    def reloaded(self, names: Iterable[str]) -> None:
        """Connections just changed make-before-break (a new PSK loads no connection, so
        charon logs nothing): from here on, what their older SAs say is not a failure of
        the new configuration (e.g. the peer's Delete of an SA it replaced)."""
        with self._lock:
            self._seq += 1   # every SA seen so far is older than this
            for name in names:
                self._loaded_at[name] = self._seq

    def _owner(self, event: Mapping[str, Any], message: str) -> str | None:
        """The connection a log event is about: its IKE SA's name, or, for an SA the
        peer started that matched no connection yet (``(unnamed)``), the connection
        whose peer is the address that started it."""
        name = _text(event.get("ikesa-name", "")) or None
        if name in self._connections:
            return name
        uniqueid = _text(event.get("ikesa-uniqueid", ""))
        if not uniqueid:
            return None
        started = _INITIATING.match(message)
        if started:
            self._unnamed[uniqueid] = started["addr"]
            while len(self._unnamed) > 256:   # the oldest first: SAs long gone
                del self._unnamed[next(iter(self._unnamed))]
        address = self._unnamed.get(uniqueid)
        for candidate, known in self._connections.items():
            if address is not None and address in known.context.expected.peer.split(", "):
                return candidate
        return None

    def log(self, event: Mapping[str, Any]) -> str | None:
        """Take one VICI ``log`` event; the connection name whose explanation changed."""
        message = _text(event.get("msg", ""))
        with self._lock:
            self._seq += 1
            uniqueid = _text(event.get("ikesa-uniqueid", ""))
            if uniqueid and uniqueid not in self._first_seen:
                self._first_seen[uniqueid] = self._seq
                while len(self._first_seen) > 1024:   # the oldest first
                    del self._first_seen[next(iter(self._first_seen))]
            loaded = _LOADED.match(message)
            if loaded:
                self._loaded_at[loaded["name"]] = self._seq
            name = self._owner(event, message)
            known = self._connections.get(name) if name else None
            if known is None:
                return None
            if uniqueid and self._first_seen[uniqueid] < self._loaded_at.get(name, 0):
                return None   # an SA from before the connection was (re)loaded
            ctx = known.context
            if uniqueid and _ESTABLISHED.match(message):
                _remember_established(ctx, uniqueid)
            if uniqueid:
                ctx.established = uniqueid in ctx.established_ids
            found = classify(message, ctx)
            if found is None or found == known.current:
                return None
            if known.current and known.current[0] in _STICKY.get(found[0], ()):
                return None   # e.g. a dead peer that does not answer the restart either
            code, text = found
            known.current = found
            known.failure = Failure(reason=code, message=text, at=iso(self.clock()))
            known.context.received_proposals = None
            return name

    def updown(self, label: str, event: Mapping[str, Any]) -> list[str]:
        """Take an ``ike-updown``/``child-updown`` event; the connection names it touched."""
        touched = []
        up = _text(event.get("up", "no")) == "yes"
        with self._lock:
            for name, sa in event.items():
                known = self._connections.get(_text(name))
                if known is None or not isinstance(sa, Mapping):
                    continue
                touched.append(_text(name))
                if label == "ike-updown" and up and \
                        _text(sa.get("state", "")) == "ESTABLISHED":
                    _remember_established(known.context, _text(sa.get("uniqueid", "")))
                elif up:
                    known.current = None   # a working tunnel: the failure is history
        return touched

    def detail(self, name: str, snapshot: SASnapshot | None, up: bool) -> StatusDetail:
        """The status detail of connection ``name`` now (``up``: its status is ACTIVE)."""
        snapshot = snapshot or SASnapshot()
        one_way = up and snapshot.one_way
        with self._lock:
            known = self._connections.get(name)
            failure = known.failure if known else None
            current = known.current if known else None
            since = None
            if known is not None:
                if up:
                    known.current = current = None
                if one_way and known.one_way_since is None:
                    known.one_way_since = self.clock()
                elif not one_way:
                    known.one_way_since = None
                since = known.one_way_since
        warnings: list[Failure] = []
        reason: str | None = None
        message: str | None = None
        if one_way:
            text = (f"packets leave through the tunnel but none came back for more than "
                    f"{self.one_way_after_s:g} s")
            warnings.append(Failure(reason="one_way_traffic", message=text,
                                    at=iso(since or self.clock())))
            reason, message = "one_way_traffic", text
        elif not up and current is not None:
            reason, message = current
        elif not up and snapshot.ike and snapshot.ike.get("state") != "ESTABLISHED":
            reason = "negotiating"
            message = f"IKE SA {snapshot.ike.get('state')}"
        elif not up:
            reason, message = "negotiating", "no IKE SA yet"
        return detail(reason, message, ike=snapshot.ike, child=snapshot.child,
                      last_failure=failure, warnings=warnings)
