"""``isthmus peer test CONNECTION``: prove a site connection against a throwaway peer.

Run as root on an agent host (the one whose bridge carries the router's external
network). In order:

1. reads the connection and its ``strongswan`` peer configuration over the API, as
   the operator (the PSK must be readable: a placeholder cannot negotiate);
2. finds where the peer would stand: the router's external subnet (``peer_address``
   must be on it: the router reaches any other address through its upstream
   gateway, which a throwaway peer cannot stand in for), the uplink (``--bridge``,
   or the agent's ``[vpnagent] physical_networks`` entry for the external network's
   ``provider:physical_network``), and what to ping (``--ping``, or the router's
   interface address in one of the connection's local subnets);
3. builds :class:`~isthmus.peers.trial.PeerNetwork` (refusing when something already
   answers ARP for ``peer_address``), starts a
   :class:`~isthmus.peers.trial.ThrowawayCharon` with the downloaded swanctl.conf
   untouched, initiates the children the config leaves to traffic (``start_action =
   trap``; ``start`` ones start by themselves), again while it holds no IKE SA, waits
   for every CHILD_SA to be INSTALLED, then pings from the peer's address in the
   matching peer CIDR;
4. reports what was negotiated, or the Isthmus side's reason (``isthmus:status_detail``)
   and the throwaway peer's own last log lines;
5. removes everything (also on Ctrl-C or SIGTERM), unless ``--keep``.

Exit status: 0 the tunnel came up (and the ping, when there was one, was answered),
1 it did not, 2 the test could not run (:class:`UsageError`).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

from isthmus.peers import PSK_PLACEHOLDER
from isthmus.peers.trial import (CHARON, AddressInUse, PeerNetwork, Retransmit,
                                 ThrowawayCharon, TrialError)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_URL = "http://127.0.0.1:9696"
DEFAULT_CONFIG_FILE = "/etc/isthmus/isthmus.conf"

# Fewer, shorter retransmits than charon's (about 165 s): a peer that never answers is
# reported within a test's timeout, yet 3 tries ride out one lost packet.
TRIAL_RETRANSMIT = Retransmit(tries=3, timeout=2.0, base=1.5)

# A peer whose LAN keeps sending keeps trying; so does the throwaway peer, this often,
# whenever it holds no IKE SA (e.g. the agent had not loaded a just-created connection).
RETRY_EVERY_S = 5

# charon's lines worth showing an operator when the tunnel did not come up.
_RELEVANT = re.compile(
    r"NO_PROPOSAL_CHOSEN|AUTHENTICATION_FAILED|TS_UNACCEPTABLE|INVALID_|FAILED|failed|"
    r"no matching|not found|retransmit|giving up|establishing|established|deleting|"
    r"received|initiating|unable|no proposal|selected proposal|installed|error",
    re.IGNORECASE)


class UsageError(Exception):
    """The test cannot run as asked (exit 2): unknown connection, PSK not readable, not
    root, no uplink... The message says what to change."""


# -- the API, as the operator ----------------------------------------------------------------

@dataclass
class Api:
    """A few GETs on the Isthmus API with the operator's credentials (stdlib only: the
    agent host needs no HTTP client package)."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 30

    def get(self, path: str, params: dict[str, str] | None = None,
            accept: str = "application/json") -> tuple[int, str]:
        """``GET path``: (status, body); connection errors become :class:`UsageError`."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        request = urllib.request.Request(f"{self.url.rstrip('/')}{path}{query}",
                                         headers={**self.headers, "Accept": accept})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")
        except (urllib.error.URLError, OSError) as err:
            raise UsageError(f"cannot reach the Isthmus API at {self.url}: "
                             f"{getattr(err, 'reason', err)} (give --url)") from None

    def resource(self, path: str, key: str, what: str) -> dict[str, Any]:
        """The ``key`` object at ``path``; a 404 is :class:`UsageError` naming ``what``."""
        status, body = self.get(path)
        if status == 404:
            raise UsageError(f"no {what} (or not visible to these credentials)")
        if status != 200:
            raise UsageError(f"GET {path}: {status}: {_error_text(body)}")
        return json.loads(body)[key]

    def listing(self, path: str, key: str, **filters: str) -> list[dict[str, Any]]:
        """A filtered collection."""
        status, body = self.get(path, filters)
        if status != 200:
            raise UsageError(f"GET {path}: {status}: {_error_text(body)}")
        return json.loads(body)[key]


def _error_text(body: str) -> str:
    """A Neutron error body's message, or the body."""
    try:
        error = json.loads(body)["NeutronError"]
        return f"{error.get('type')}: {error.get('message')}"
    except (ValueError, KeyError, TypeError):
        return body.strip()[:300]


def api_from(args: argparse.Namespace) -> Api:
    """The API client the command-line options (or the ``OS_*`` variables) describe."""
    headers = {}
    if args.token:
        headers["X-Auth-Token"] = args.token
    if args.project:   # noauth (auth_strategy = noauth): who we are is what we say
        headers["X-Project-Id"] = args.project
    if args.roles:
        headers["X-Roles"] = args.roles
    return Api(args.url, headers)


# -- the plan: what the peer is, where it stands, what it pings --------------------------------

@dataclass
class Child:
    """One child of the downloaded swanctl.conf."""

    name: str
    local_ts: tuple[str, ...]
    remote_ts: tuple[str, ...]
    start_action: str


@dataclass
class Plan:
    """Everything the trial needs, read from the API before anything is built."""

    connection: dict[str, Any]
    swanctl_text: str
    peer_address: ipaddress.IPv4Interface      # with the external subnet's prefix
    router_address: str
    uplink: str
    children: list[Child]
    ping: str | None                            # None: nothing to ping, said so
    ping_note: str = ""

    @property
    def peer_cidrs(self) -> tuple[str, ...]:
        """The peer's own subnets, in the order the children name them."""
        return tuple(dict.fromkeys(ts for c in self.children for ts in c.local_ts))


def parse_swanctl(text: str) -> dict[str, Any]:
    """A swanctl.conf as nested dicts (``name { ... }`` blocks, ``key = value`` strings).

    Enough for the files :mod:`isthmus.peers.strongswan` writes: one setting or block
    opening per line, ``#`` comments."""
    root: dict[str, Any] = {}
    stack = [root]
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("{"):
            block: dict[str, Any] = {}
            stack[-1][line[:-1].strip()] = block
            stack.append(block)
        elif line == "}":
            stack.pop()
        else:
            key, _, value = line.partition("=")
            stack[-1][key.strip()] = value.strip()
    return root


def _split(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def make_plan(api: Api, connection_id: str, bridge: str | None, config_file: str | None,
              ping: str | None) -> Plan:
    """Read the connection, its peer configuration, router, external subnet and uplink;
    :class:`UsageError` for whatever makes the test impossible."""
    connection = api.resource(f"/v2.0/vpn/ipsec-site-connections/{connection_id}",
                              "ipsec_site_connection", f"site connection {connection_id}")
    status, text = api.get(f"/v2.0/vpn/ipsec-site-connections/{connection_id}/peer-config",
                           {"format": "strongswan"}, accept="text/plain")
    if status != 200:
        raise UsageError(f"the strongswan peer configuration of {connection_id} cannot be "
                         f"made: {_error_text(text)}")
    if PSK_PLACEHOLDER in text:
        raise UsageError(
            "the peer configuration holds no pre-shared key: these credentials may not read "
            "it (policy rule get_ipsec_site_connection:psk). Run as the project's reader or "
            "an admin")
    conns = parse_swanctl(text).get("connections", {})
    if len(conns) != 1:
        raise UsageError(f"the peer configuration has {len(conns)} connections, expected 1")
    [conn] = conns.values()
    children = [Child(name, _split(c.get("local_ts", "")), _split(c.get("remote_ts", "")),
                      c.get("start_action", "none"))
                for name, c in conn.get("children", {}).items()]
    router_address = conn["remote_addrs"]
    peer_ip = _peer_ip(connection["peer_address"])
    router, external = _external_subnet(api, connection, router_address)
    if peer_ip not in external:
        raise UsageError(
            f"peer_address {peer_ip} is not on the router's external subnet {external}: "
            f"the router reaches it through its gateway, which a throwaway peer on this "
            "host cannot stand in for. Test from a host on that path, or with a connection "
            "whose peer_address is on the external subnet")
    if str(peer_ip) == router_address:
        raise UsageError(f"peer_address {peer_ip} is the router's own address")
    network_id = router["external_gateway_info"]["network_id"]
    network = api.resource(f"/v2.0/networks/{network_id}", "network", f"network {network_id}")
    if network.get("provider:network_type") == "vlan":
        raise UsageError(
            f"the router's external network {network_id} is a vlan network "
            f"(segmentation id {network.get('provider:segmentation_id')}): isthmus peer "
            "test plugs its peer in untagged, so it supports flat external networks only")
    uplink = bridge or _uplink_from_config(network, config_file)
    target, note = ping, ""
    if target is None:
        target, note = _ping_target(api, router["id"], children)
    return Plan(connection, text, ipaddress.IPv4Interface(f"{peer_ip}/{external.prefixlen}"),
                router_address, uplink, children, target, note)


def _peer_ip(peer_address: str) -> ipaddress.IPv4Address:
    """The connection's ``peer_address``, if the throwaway peer can take it."""
    try:
        peer_ip = ipaddress.ip_address(peer_address)
    except ValueError:
        raise UsageError(f"peer_address {peer_address!r} is not an IP address") from None
    if not isinstance(peer_ip, ipaddress.IPv4Address):
        raise UsageError(f"peer_address {peer_ip} is IPv6: isthmus peer test supports "
                         "IPv4 peers only")
    return peer_ip


def _external_subnet(api: Api, connection: dict[str, Any], router_address: str
                     ) -> tuple[dict[str, Any], ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The connection's router, and the external subnet holding ``router_address``."""
    service = api.resource(f"/v2.0/vpn/vpnservices/{connection['vpnservice_id']}",
                           "vpnservice", f"VPN service {connection['vpnservice_id']}")
    router = api.resource(f"/v2.0/routers/{service['router_id']}", "router",
                          f"router {service['router_id']}")
    gateway = router.get("external_gateway_info") or {}
    fixed = next((ip for ip in gateway.get("external_fixed_ips", [])
                  if ip.get("ip_address") == router_address), None)
    if fixed is None:
        raise UsageError(f"router {router['id']} has no external address {router_address} "
                         "(no gateway set?): Isthmus cannot terminate this connection")
    subnet = api.resource(f"/v2.0/subnets/{fixed['subnet_id']}", "subnet",
                          f"subnet {fixed['subnet_id']}")
    return router, ipaddress.ip_network(subnet["cidr"])


def _uplink_from_config(network: dict[str, Any], config_file: str | None) -> str:
    """The device ``[vpnagent] physical_networks`` maps the external ``network``'s
    physical network to (the agent plugged the router's gateway there)."""
    path = config_file or DEFAULT_CONFIG_FILE
    physnet = network.get("provider:physical_network")
    if not physnet:
        raise UsageError(
            f"the router's external network {network['id']} has no provider:physical_network "
            "(or these credentials are not an admin's): give --bridge, the bridge or "
            "interface of this host that carries it")
    if not os.path.exists(path):
        raise UsageError(f"no agent configuration {path} to find physical network "
                         f"{physnet!r} in: give --config-file or --bridge")
    from isthmus import config
    from isthmus.agent.routers.options import BadPhysicalNetworks, parse_physical_networks

    conf = config.load([], [path])
    try:
        mapping = parse_physical_networks(conf.vpnagent.physical_networks)
    except BadPhysicalNetworks as err:
        raise UsageError(str(err)) from None
    if physnet not in mapping:
        raise UsageError(f"physical network {physnet!r} of the router's external network is "
                         f"not in [vpnagent] physical_networks of {path} ({mapping or 'empty'}):"
                         " run on the router's agent host, or give --bridge")
    return mapping[physnet]


def _ping_target(api: Api, router_id: str, children: list[Child]) -> tuple[str | None, str]:
    """The router's interface address in a subnet the tunnel protects (it answers from
    inside the tunnel whatever hosts the LAN has), or None and why."""
    remote = [ipaddress.ip_network(ts, strict=False) for c in children for ts in c.remote_ts]
    for port in api.listing("/v2.0/ports", "ports", device_id=router_id):
        if port.get("device_owner") == "network:router_gateway":
            continue
        for fixed in port.get("fixed_ips", []):
            address = ipaddress.ip_address(fixed["ip_address"])
            if address.version == 4 and any(address in net for net in remote):
                return str(address), ""
    return None, ("no router interface in the connection's local subnets: ping skipped "
                  "(give --ping ADDRESS of a host there)")


# -- the trial ------------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What happened: the peer's SAs, the ping, and the Isthmus side's view."""

    ike: dict[str, Any] | None = None
    children: dict[str, dict[str, Any]] = field(default_factory=dict)
    ping: bool | None = None                  # None: not tried
    isthmus_status: str = ""
    isthmus_detail: dict[str, Any] | None = None
    peer_log: list[str] = field(default_factory=list)
    problem: str = ""
    kept: str = ""                            # --keep: where it is, how to remove it

    @property
    def ok(self) -> bool:
        """Tunnel up, and the ping answered when there was one."""
        return not self.problem


class _Stop(Exception):
    """SIGTERM during the trial: clean up as for Ctrl-C."""


def run_trial(api: Api, plan: Plan, timeout_s: float, keep: bool,
              out: TextIO = sys.stdout) -> Outcome:
    """Build the peer, wait for the tunnel, ping, read Isthmus's view, clean up."""
    network = PeerNetwork(plan.uplink, plan.peer_address, plan.peer_cidrs)
    charon = ThrowawayCharon(network.namespace, plan.swanctl_text, retransmit=TRIAL_RETRANSMIT)
    outcome = Outcome()
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    conn_id = plan.connection["id"]
    try:
        print(f"Throwaway peer {plan.peer_address} on {plan.uplink} (namespace "
              f"{network.namespace}) against router {plan.router_address}...", file=out,
              flush=True)
        network.create()
        charon.start()
        if not _wait_for_tunnel(api, plan, charon, timeout_s, outcome):
            up = (outcome.ike or {}).get("state") == "ESTABLISHED"
            outcome.problem = (f"IKE SA up but not every CHILD_SA INSTALLED within "
                               f"{timeout_s:g} s" if up else
                               f"no CHILD_SA INSTALLED within {timeout_s:g} s")
            _wait_for_reason(api, conn_id, outcome)
        elif plan.ping is not None:
            outcome.ping = _ping(network, plan)
            if not outcome.ping:
                outcome.problem = (f"the tunnel is up but {plan.ping} did not answer a ping "
                                   "through it")
        if outcome.problem:
            _read_isthmus(api, conn_id, outcome)
            outcome.peer_log = [line for line in charon.log().splitlines()
                                if _RELEVANT.search(line)][-12:]
        else:   # the agent's status poll may not have seen the new SAs yet
            _wait_for_active(api, conn_id, outcome)
        return outcome
    finally:
        # A second Ctrl-C or TERM must not cut the cleanup short.
        interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            if keep:
                outcome.kept = _kept(network, charon)
                if sys.exc_info()[0] is not None:   # no report follows: say it now
                    print(outcome.kept, file=out)
            else:
                charon.stop()
                network.destroy()
        finally:
            signal.signal(signal.SIGINT, interrupt)
            signal.signal(signal.SIGTERM, previous)


def _wait_for_tunnel(api: Api, plan: Plan, charon: ThrowawayCharon, timeout_s: float,
                     outcome: Outcome) -> bool:
    """Initiate and wait until every child of the config is INSTALLED (True) or the
    timeout; the peer's SAs and the Isthmus side's view go into ``outcome``.

    ``start_action = start`` children (Isthmus response-only) start when loaded; the
    others are initiated as the peer LAN's first packet would, and again every
    :data:`RETRY_EVERY_S` while the peer holds no IKE SA."""
    wanted = {c.name for c in plan.children}
    started = time.monotonic()
    deadline = started + timeout_s
    next_poll, next_initiate = started, started
    initiate = [c.name for c in plan.children if c.start_action != "start"]
    while True:
        sas = charon.sas()
        if _installed(sas, wanted, outcome):
            return True
        now = time.monotonic()
        if now > deadline:
            return False
        if not sas and now >= next_initiate:
            for name in initiate:
                charon.initiate(name)
            initiate = [c.name for c in plan.children]   # from now on, all of them
            next_initiate = now + RETRY_EVERY_S
        if now >= next_poll:   # the Isthmus side's view, once a second
            _read_isthmus(api, plan.connection["id"], outcome)
            next_poll = now + 1
        time.sleep(0.2)


def _raise_stop(signum: int, frame: Any) -> None:
    raise _Stop()


def _installed(sas: dict[str, dict], wanted: set[str], outcome: Outcome) -> bool:
    """Whether every wanted child is INSTALLED in ``sas`` (the peer's SAs now); what was
    seen goes into ``outcome`` for the report (an ESTABLISHED or INSTALLED SA is kept
    over a later attempt's)."""
    installed = set()
    for sa in sas.values():
        if outcome.ike is None or sa.get("state") == "ESTABLISHED" or \
                outcome.ike.get("state") != "ESTABLISHED":
            outcome.ike = sa
        for child in sa.get("child-sas", {}).values():
            name = child.get("name")
            if name not in wanted:
                continue
            if child.get("state") == "INSTALLED":
                installed.add(name)
            if child.get("state") == "INSTALLED" or \
                    outcome.children.get(name, {}).get("state") != "INSTALLED":
                outcome.children[name] = child
    return bool(wanted) and installed == wanted


def _read_isthmus(api: Api, conn_id: str, outcome: Outcome) -> None:
    status, body = api.get(f"/v2.0/vpn/ipsec-site-connections/{conn_id}")
    if status == 200:
        shown = json.loads(body)["ipsec_site_connection"]
        outcome.isthmus_status = shown.get("status", "")
        outcome.isthmus_detail = shown.get("isthmus:status_detail")


def _wait_for_active(api: Api, conn_id: str, outcome: Outcome, wait_s: float = 10) -> None:
    """After success, give the agent's status poll a moment to see the tunnel."""
    deadline = time.monotonic() + wait_s
    while True:
        _read_isthmus(api, conn_id, outcome)
        if outcome.isthmus_status == "ACTIVE" or time.monotonic() > deadline:
            return
        time.sleep(0.5)


def _wait_for_reason(api: Api, conn_id: str, outcome: Outcome, wait_s: float = 10) -> None:
    """After a failure, give the agent's status poll a moment to say why."""
    deadline = time.monotonic() + wait_s
    while True:
        _read_isthmus(api, conn_id, outcome)
        if (outcome.isthmus_detail or {}).get("reason") not in (None, "negotiating") \
                or time.monotonic() > deadline:
            return
        time.sleep(1)


def _ping(network: PeerNetwork, plan: Plan) -> bool:
    """Ping ``plan.ping`` from the peer's address in a peer CIDR that a child pairs with
    it (IKEv1 has one child per pair), so that the packet matches a CHILD_SA."""
    target = ipaddress.ip_address(plan.ping)
    sources = [address.ip for address in network.peer_addresses()]
    for child in plan.children:
        if any(target in ipaddress.ip_network(ts, strict=False) for ts in child.remote_ts):
            sources = [ip for ip in sources if any(
                ip in ipaddress.ip_network(ts, strict=False) for ts in child.local_ts)] \
                or sources
            break
    result = subprocess.run(["ip", "netns", "exec", network.namespace, "ping", "-n", "-c", "1",
                             "-w", "10", "-I", str(sources[0]), str(target)],
                            capture_output=True, text=True, timeout=30)
    return result.returncode == 0


def _kept(network: PeerNetwork, charon: ThrowawayCharon) -> str:
    """Where the kept peer is, and the commands that remove it."""
    text = ""
    if charon.directory is not None:
        text = (f"Kept (--keep): charon in namespace {network.namespace}; look at it with\n"
                f"  swanctl --list-sas --uri unix://{charon.vici_socket}\n"
                f"  less {charon.log_path}\n")
    return text + "Remove it with:\n  " + "\n  ".join(network.removal_commands() + (
        [f"rm -rf {charon.directory}"] if charon.directory is not None else []))


# -- the report -----------------------------------------------------------------------------------

def _algorithms(sa: dict[str, Any]) -> str:
    parts = [f"{sa.get('encr-alg')}-{sa['encr-keysize']}" if sa.get("encr-keysize")
             else sa.get("encr-alg")]
    parts += [sa.get(key) for key in ("integ-alg", "prf-alg", "dh-group") if sa.get(key)]
    return "/".join(p for p in parts if p)


def report(plan: Plan, outcome: Outcome, out: TextIO = sys.stdout) -> None:
    """The result in a few lines: what was negotiated, the ping, Isthmus's view; on
    failure the Isthmus side's reason and the peer's own last log lines."""
    name = plan.connection.get("name") or plan.connection["id"]
    ike = outcome.ike
    if ike:
        who = "the peer" if ike.get("initiator") == "yes" else "Isthmus"
        algorithms = _algorithms(ike)
        print(f"  IKE SA:    {ike.get('state')}, IKEv{ike.get('version')}, "
              f"{algorithms + ', ' if algorithms else ''}initiated by {who}", file=out)
    else:
        print("  IKE SA:    none", file=out)
    for child_name, child in outcome.children.items():
        print(f"  CHILD SA:  {child.get('state')}, {child.get('protocol')} "
              f"{(child.get('mode') or '').lower()}, {_algorithms(child)}, "
              f"{','.join(child.get('local-ts', []))} === "
              f"{','.join(child.get('remote-ts', []))}", file=out)
    if outcome.ping is not None:
        print(f"  ping:      {plan.ping} {'answered' if outcome.ping else 'no answer'}",
              file=out)
    elif plan.ping_note:
        print(f"  ping:      {plan.ping_note}", file=out)
    detail = outcome.isthmus_detail or {}
    isthmus = outcome.isthmus_status or "?"
    if detail.get("reason"):
        isthmus += f", reason {detail['reason']}: {detail.get('message')}"
    print(f"  Isthmus:   {isthmus}", file=out)
    if outcome.ok:
        print(f"OK: connection {name} ({plan.connection['id']}) works with this peer "
              "configuration.", file=out)
    else:
        if outcome.peer_log:
            print("  peer log (last relevant lines):", file=out)
            for line in outcome.peer_log:
                print(f"    {line}", file=out)
        print(f"FAILED: {outcome.problem}.", file=out)
    if outcome.kept:
        print(outcome.kept, file=out)


# -- the command ----------------------------------------------------------------------------------

def add_subcommands(sub: Any) -> None:
    """``isthmus peer test``; ``sub`` is the top-level ``add_subparsers()``."""
    peer = sub.add_parser("peer", help="the other end of site connections")
    peer_sub = peer.add_subparsers(dest="peer_command", required=True)
    test = peer_sub.add_parser(
        "test", help="bring a connection up against a throwaway strongSwan peer (root, on "
                     "the router's agent host)",
        description="Spin up a throwaway strongSwan peer from the connection's strongswan "
                    "peer configuration, bring the tunnel up against the real router, "
                    "report, clean up. See docs/peers.md.")
    test.add_argument("connection", metavar="CONNECTION_ID")
    test.add_argument("--url", default=os.environ.get("ISTHMUS_URL", DEFAULT_URL),
                      help=f"the Isthmus API (default: $ISTHMUS_URL or {DEFAULT_URL})")
    test.add_argument("--token", default=os.environ.get("OS_TOKEN"),
                      help="a Keystone token (default: $OS_TOKEN)")
    test.add_argument("--project", default=os.environ.get("OS_PROJECT_ID"),
                      help="noauth: the project to act as (default: $OS_PROJECT_ID; none: "
                           "noauth's admin project)")
    test.add_argument("--roles", help="noauth: roles, comma-separated (e.g. admin)")
    where = test.add_mutually_exclusive_group()
    where.add_argument("--bridge", metavar="DEVICE",
                       help="the bridge (or plain interface) carrying the router's external "
                            "network; default: from the agent's [vpnagent] physical_networks")
    where.add_argument("--config-file", metavar="PATH",
                       help=f"the agent's configuration (default: {DEFAULT_CONFIG_FILE})")
    test.add_argument("--ping", metavar="ADDRESS",
                      help="what to ping through the tunnel (default: the router's interface "
                           "address in a local subnet)")
    test.add_argument("--timeout", type=float, default=30, metavar="SECONDS",
                      help="how long to wait for the tunnel (default: 30)")
    test.add_argument("--keep", action="store_true",
                      help="leave the peer running for debugging; prints how to remove it")
    test.set_defaults(func=command)


def command(args: argparse.Namespace, out: TextIO = sys.stdout,
            err: TextIO = sys.stderr) -> int:
    """``isthmus peer test``: its exit status (0 works, 1 does not, 2 cannot test)."""
    return _guarded(lambda: _test(args, out), err)


def _test(args: argparse.Namespace, out: TextIO) -> int:
    if os.geteuid() != 0:
        raise UsageError("isthmus peer test needs root (a network namespace, a veth on the "
                         "bridge, charon): run it with sudo on the router's agent host")
    if not os.path.exists(CHARON):
        raise UsageError(f"strongSwan's charon is not installed ({CHARON})")
    api = api_from(args)
    plan = make_plan(api, args.connection, args.bridge, args.config_file, args.ping)
    outcome = run_trial(api, plan, args.timeout, args.keep, out)
    report(plan, outcome, out)
    return EXIT_OK if outcome.ok else EXIT_FAILED


def _guarded(run: Callable[[], int], err: TextIO) -> int:
    try:
        return run()
    except (UsageError, AddressInUse) as error:
        print(f"isthmus peer test: {error}", file=err)
        return EXIT_USAGE
    except TrialError as error:
        print(f"isthmus peer test: the throwaway peer could not be set up: {error}", file=err)
        return EXIT_FAILED
    except (KeyboardInterrupt, _Stop):
        print("isthmus peer test: interrupted", file=err)
        return 130
