"""Run the installed `ip` on many argument lists and report which ones executed a program.

Started by test_iproute2.py as `unshare --mount --propagation private python -m
tests.privileged.ip_probe WORKDIR`, so /run/netns here is a private tmpfs:
`ip netns delete`, `-all netns exec` and friends only ever see the one
namespace made below, called `default` (which is also the name `ip vrf exec`
takes for the default VRF, so one argument list probes both).

Reads a JSON list of argument lists (without `ip`) on stdin; each may contain
the placeholder MARKER. Writes a JSON list of {"executed": bool, "stderr": str}:
`executed` is whether the marker file appeared, i.e. whether ip ran the
`touch MARKER` (or, under -all, the `default` script that execs its
arguments) it was given.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

MARKER = "MARKER"
BATCH_FILE_NAME = "netns"  # `ip -batch netns ...` reads this file from the cwd


def main() -> None:
    workdir = Path(sys.argv[1])
    os.makedirs("/run/netns", exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "isthmus-ip-probe", "/run/netns"], check=True)
    bindir = workdir / "bin"
    bindir.mkdir()
    # Under `ip -all netns exec default touch M`, ip runs `default touch M`.
    script = bindir / "default"
    script.write_text('#!/bin/sh\nexec "$@"\n')
    script.chmod(0o755)
    env = {"PATH": f"{bindir}:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
    results = []
    for index, args in enumerate(json.load(sys.stdin)):
        if not os.path.exists("/run/netns/default"):
            subprocess.run(["ip", "netns", "add", "default"], check=True)
        marker = workdir / f"marker-{index}"
        cwd = workdir / f"cwd-{index}"
        cwd.mkdir()
        (cwd / BATCH_FILE_NAME).write_text(f"netns exec default /usr/bin/touch {marker}\n")
        argv = ["ip", *(str(marker) if word == MARKER else word for word in args)]
        outcome = subprocess.run(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20
        )
        results.append({"executed": marker.exists(), "stderr": outcome.stderr})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
