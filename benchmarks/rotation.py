#!/usr/bin/env python3
"""Rotation benchmark: pings lost while a live connection's PSK, ESP and IKE proposals change.

Two sites in network namespaces (``isthmus.demo.sites.Sites``), router a run by
Isthmus in this process (API, one agent, the strongSwan driver on
kernel-libipsec, the real privileged daemon). Each round runs two peers, one
after the other:

* ``isthmus``: router b run by the same Isthmus; each change is made through the
  API on a's connection, then 2 s later on b's (the sides disagree meanwhile);
* ``strongswan``: router b a strongSwan configured by hand (``start_action
  start``); each change is made through the API on a's connection, then 2 s
  later in the peer's swanctl.conf, loaded with ``swanctl --load-all``.

The changes, in order: a new PSK, new ESP proposals (aes-256), new IKE proposals
(aes-256). During each, a ping every 20 ms crosses the tunnel (host a to host b)
until every SA of router a is a new one; it counts the pings lost and the longest
run of lost ones (``tests/e2e/rotation.py``). It prints, per change and peer, the
median and the maximum over the rounds.

    sudo .venv/bin/python benchmarks/rotation.py --rounds 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import openstack

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from isthmus.demo import privileged  # noqa: E402
from isthmus.demo.sites import Sites  # noqa: E402
from tests.e2e.conftest import running_isthmus  # noqa: E402
from tests.e2e.rotation import (PingResult, isthmus_peer_rotations, plain_peer,  # noqa: E402
                                plain_peer_rotations)

KINDS = ("psk", "esp", "ike")


def with_isthmus(run: Callable[[Any, Any, Sites], dict[str, PingResult]]
                 ) -> dict[str, PingResult]:
    """``run(isthmus, sdk, sites)`` on fresh namespaces and a fresh Isthmus."""
    state = Path(tempfile.mkdtemp(prefix="ism-", dir="/tmp"))
    os.chmod(state, 0o755)
    sites = Sites()
    sites.create()
    try:
        env = running_isthmus(state, privileged.write_config(state))
        isthmus = next(env)
        sdk = openstack.connect(auth_type="none", network_endpoint_override=f"{isthmus.api.url}/",
                                load_yaml_config=False, load_envvars=False)
        try:
            return run(isthmus, sdk, sites)
        finally:
            sdk.close()
            env.close()
    finally:
        sites.destroy()
        shutil.rmtree(state, ignore_errors=True)


def against_plain_peer(isthmus: Any, sdk: Any, sites: Sites) -> dict[str, PingResult]:
    """The rotations against a hand-configured strongSwan in router b."""
    peer = plain_peer(sites)
    peer.start()
    try:
        return plain_peer_rotations(isthmus, sdk, sites, peer)[1]
    finally:
        peer.stop()


def summary(results: list[PingResult]) -> str:
    """``lost median/max, gap median/max`` of several rounds."""
    lost = [r.lost for r in results]
    gaps = [r.longest_gap_s * 1000 for r in results]
    return (f"{statistics.median(lost):>5g} /{max(lost):>4d}   "
            f"{statistics.median(gaps):>6.0f} /{max(gaps):>5.0f} ms")


def main() -> int:
    """Run the rounds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("run as root (network namespaces, charon)")
    seen: dict[str, dict[str, list[PingResult]]] = {
        peer: {kind: [] for kind in KINDS} for peer in ("isthmus", "strongswan")}
    for round_no in range(1, args.rounds + 1):
        for peer, run in (("isthmus", isthmus_peer_rotations),
                          ("strongswan", against_plain_peer)):
            results = with_isthmus(run)
            for kind in KINDS:
                seen[peer][kind].append(results[kind])
            print(f"round {round_no} {peer:>10}: " + ", ".join(
                f"{kind} {results[kind].lost} lost" for kind in KINDS), flush=True)
    print(f"\n{args.rounds} rounds, a ping every 20 ms; pings lost (median / max), "
          "longest gap (median / max)")
    print(f"{'change':<8}{'Isthmus peer':^32}{'plain strongSwan peer':^32}")
    for kind in KINDS:
        print(f"{kind:<8}{summary(seen['isthmus'][kind]):^32}"
              f"{summary(seen['strongswan'][kind]):^32}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
