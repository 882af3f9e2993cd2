"""Router failover: time from "kill -9" of the agent hosting a router with a live
tunnel to pings crossing the tunnel again through the other agent (root).

    sudo .venv/bin/python benchmarks/failover.py [--runs 3] [--down-time 4]

Each run builds a fresh world (``isthmus.demo.failover``: two agents for site a on
the same bridges, one for site b, strongSwan on kernel-libipsec), waits for the
tunnel, kills the hosting agent and its data plane, and measures until a ping
(one every ~0.5 s at most) crosses again. Prints each run and the median next to
``agent_down_time``.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time

from isthmus.demo.failover import failover_world


def one_run(down_time_s: int) -> float | None:
    """Seconds from the kill to the first ping across the tunnel (None: not within 60 s)."""
    with failover_world(down_time_s=down_time_s) as world:
        deadline = time.monotonic() + 60
        while not world.tunnel_pings() and time.monotonic() < deadline:
            time.sleep(0.2)
        killed = time.monotonic()
        world.kill("a")
        recovered = world.wait_for_tunnel(timeout_s=down_time_s + 60)
        return None if recovered is None else time.monotonic() - killed


def main() -> int:
    """Run the measurement ``--runs`` times; print every run and the median."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--down-time", type=int, default=4,
                        help="[DEFAULT] agent_down_time in seconds (heartbeats every 1 s)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    times = []
    for run in range(args.runs):
        took = one_run(args.down_time)
        print(f"run {run + 1}: " + (f"traffic back after {took:.2f} s" if took is not None
                                     else "no traffic within the deadline"), flush=True)
        if took is not None:
            times.append(took)
    if not times:
        return 1
    median = statistics.median(times)
    print(f"agent_down_time {args.down_time} s: recovery median {median:.2f} s "
          f"(min {min(times):.2f}, max {max(times):.2f}, {len(times)}/{args.runs} runs); "
          f"goal <= {args.down_time + 5} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
