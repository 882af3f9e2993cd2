"""``isthmus-charon start`` and ``stop`` of one router never interleave, even in two processes.

A ``stop`` that ran while a ``start`` of the same router was spawning charon
removed the directory under the new charon: ``start`` then waited in vain for
its VICI socket, and that charon ran on, on a deleted directory, out of reach
of every later ``stop``. Here stops are fired one after another while a start
runs (real launcher processes, real charon); then one last stop must leave
nothing of the router.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from isthmus.drivers.device.strongswan import launcher
from tests.strongswan.test_launcher import CHARON, charon_pids_in, make_netns  # noqa: F401

LAUNCHER = [sys.executable, "-m", "isthmus.drivers.device.strongswan.launcher"]
ROUNDS = 10

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(CHARON),
                                reason="needs root and strongSwan's charon")


def test_a_stop_racing_a_start_leaves_nothing_after_the_last_stop(make_netns):
    for round_ in range(ROUNDS):
        netns, router_id = make_netns(), str(uuid.uuid4())
        try:
            starting = subprocess.Popen([*LAUNCHER, "start", router_id, "--netns", netns],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
            stops = 0
            while starting.poll() is None:
                subprocess.run([*LAUNCHER, "stop", router_id], check=True, timeout=60)
                stops += 1
            out, err = starting.communicate(timeout=60)
            # Serialized, a start finds its directory where it left it and its charon answers.
            assert starting.returncode == 0, f"round {round_} ({stops} stops): {out}{err}"

            subprocess.run([*LAUNCHER, "stop", router_id], check=True, timeout=60)
            assert not charon_pids_in(netns), \
                f"round {round_} ({stops} stops): a charon outlived the last stop"
            assert not Path(launcher.router_dir(router_id)).exists()
            assert not Path(f"{launcher.RUN_DIR}/{router_id}.lock").exists()
        finally:
            launcher.stop(router_id)
