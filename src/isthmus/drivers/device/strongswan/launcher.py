"""``isthmus-charon``: start or stop one router's charon; run as root (via the privileged helper).

charon writes its pid file to the compiled-in ``/var/run/charon.pid``, so two
charons on one host would refuse each other. Each router's charon therefore
runs in its own mount namespace where ``/run`` is the router's own ``run/``
directory, and in the router's network namespace: the router's files, pid and
VICI socket are seen by no other router. The command returns once the VICI
socket answers (or fails with the tail of charon's log), and charon keeps
running detached, its output in ``<router dir>/charon.log``.

    isthmus-charon start ROUTER_DIR [NETNS]
    isthmus-charon stop ROUTER_DIR
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
import time

CHARON = "/usr/lib/ipsec/charon"
CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
START_TIMEOUT_S = 15.0


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL("libc.so.6", use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def paths(router_dir: str) -> dict[str, str]:
    return {"conf": os.path.join(router_dir, "etc", "strongswan.conf"),
            "run": os.path.join(router_dir, "run"),
            "pid": os.path.join(router_dir, "run", "charon.pid"),
            "vici": os.path.join(router_dir, "run", "charon.vici"),
            "log": os.path.join(router_dir, "charon.log")}


def vici_answers(path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            sock.connect(path)
        return True
    except OSError:
        return False


def _exec_charon(p: dict[str, str], netns: str | None) -> None:
    """In the grandchild: detach, enter the namespaces, become charon."""
    os.setsid()
    fd = os.open(p["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.closerange(3, 65536)
    libc = _libc()
    if netns:
        ns_fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
        _check(libc.setns(ns_fd, CLONE_NEWNET), f"entering network namespace {netns}")
        os.close(ns_fd)
    _check(libc.unshare(CLONE_NEWNS), "creating a mount namespace")
    _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "making / private")
    _check(libc.mount(p["run"].encode(), b"/run", None, MS_BIND, None),
           f"binding {p['run']} over /run")
    os.execve(CHARON, [CHARON], {"STRONGSWAN_CONF": p["conf"],
                                 "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})


def start(router_dir: str, netns: str | None) -> int:
    p = paths(router_dir)
    if not os.path.isfile(p["conf"]):
        print(f"isthmus-charon: {p['conf']} does not exist", file=sys.stderr)
        return 2
    if vici_answers(p["vici"]):
        return 0  # already running: adopt it
    if netns and not os.path.exists(f"/run/netns/{netns}"):
        print(f"isthmus-charon: network namespace {netns} does not exist", file=sys.stderr)
        return 2
    os.makedirs(p["run"], mode=0o700, exist_ok=True)
    for stale in (p["pid"], p["vici"]):
        if os.path.exists(stale):
            os.unlink(stale)
    child = os.fork()
    if child == 0:
        try:
            if os.fork() == 0:
                _exec_charon(p, netns)
        except BaseException as err:  # report to the log: nobody else sees the grandchild
            with open(p["log"], "a") as log:
                log.write(f"isthmus-charon: {err}\n")
        os._exit(0)
    os.waitpid(child, 0)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if vici_answers(p["vici"]):
            return 0
        time.sleep(0.02)
    tail = open(p["log"]).read()[-2000:] if os.path.exists(p["log"]) else ""
    print(f"isthmus-charon: charon did not open {p['vici']} within {START_TIMEOUT_S}s\n{tail}",
          file=sys.stderr)
    return 1


def _charon_pid(p: dict[str, str]) -> int | None:
    try:
        pid = int(open(p["pid"]).read().strip())
        if os.readlink(f"/proc/{pid}/exe") == CHARON:
            return pid
    except (OSError, ValueError):
        pass
    return None


def stop(router_dir: str) -> int:
    p = paths(router_dir)
    pid = _charon_pid(p)
    if pid is None:
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
        time.sleep(0.02)
    if os.path.exists(f"/proc/{pid}"):
        os.kill(pid, signal.SIGKILL)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) >= 2 and args[0] == "start" and len(args) <= 3:
        return start(os.path.abspath(args[1]), args[2] if len(args) == 3 else None)
    if len(args) == 2 and args[0] == "stop":
        return stop(os.path.abspath(args[1]))
    print(__doc__.strip().splitlines()[-2:][0].strip(), file=sys.stderr)
    print("usage: isthmus-charon start ROUTER_DIR [NETNS] | stop ROUTER_DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
