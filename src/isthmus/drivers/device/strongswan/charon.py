"""One router's charon: its process (through the privileged helper), its VICI, what it loaded.

charon's own files (strongswan.conf, charon.log, pid file, VICI socket) live in
a directory only root writes, ``/run/isthmus/charon/<router_id>/``, made by
``isthmus-charon`` (see :mod:`.launcher`). The agent keeps only
``<state_path>/strongswan/<router_id>/loaded.json`` (digests of the loaded
connections, so that an agent restart reloads nothing that did not change).
No secrets on disk: PSKs only travel over the VICI socket.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pwd
import shutil
import socket
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Mapping

import vici

from isthmus.drivers.device.strongswan import launcher, rotation
from isthmus.rpc.payloads import TRAFFIC_COUNTERS

LOG = logging.getLogger(__name__)


def digest(spec: Mapping[str, Any]) -> str:
    """A stable hash of a connection's VICI spec: what changed is reloaded, nothing else."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class CharonRefused(RuntimeError):
    """charon answered a VICI command with an error (its reason is in the message)."""


class Charon:
    """A router's charon daemon and the connections loaded into it."""

    def __init__(self, base_dir: str, router_id: str, namespace: str | None, libipsec: bool,
                 run_privileged: Callable[[list[str]], Any]) -> None:
        self.router_id = router_id
        self.dir = os.path.join(base_dir, router_id)
        self.namespace = namespace
        self.libipsec = libipsec
        self.run_privileged = run_privileged
        self.vici_path = launcher.vici_socket(router_id)   # what `isthmus-charon start` prints
        self._lock = threading.RLock()
        # by connection name; saved beside loaded.json, so that an agent restarted in
        # the middle of a change still closes the old SAs
        self._replacing: dict[str, rotation.Replacement] = self._read_replacing()

    # -- process -------------------------------------------------------------
    def running(self) -> bool:
        """Whether charon answers on its VICI socket."""
        return launcher.vici_answers(self.vici_path)

    def ensure_running(self) -> bool:
        """Start charon if it is not answering; True if it had to be (re)started."""
        if self.running():
            return False
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self.run_privileged(self.start_command())
        self.forget_loaded()   # a new charon has nothing loaded
        LOG.info("Started charon for router %s (namespace %s)", self.router_id,
                 self.namespace or "host")
        return True

    def start_command(self) -> list[str]:
        """``isthmus-charon start`` in the one argument order the shipped filters allow."""
        args = ["isthmus-charon", "start", self.router_id]
        if self.namespace:
            args += ["--netns", self.namespace]
        if self.libipsec:
            args.append("--libipsec")
        # The filter pins which user may be named here; root can use the socket anyway.
        return args + ["--vici-owner", pwd.getpwuid(os.geteuid()).pw_name]

    def stop_and_remove(self) -> None:
        """Stop this router's charon (through the privileged helper) and delete its files.

        With a namespace, only a charon running in it is stopped: another agent on this
        machine may serve the router now, from a namespace of its own."""
        if os.path.isdir(self.dir) or os.path.isdir(launcher.router_dir(self.router_id)):
            self.run_privileged(["isthmus-charon", "stop", self.router_id,
                                 *(["--netns", self.namespace] if self.namespace else [])])
            shutil.rmtree(self.dir, ignore_errors=True)
            LOG.info("Stopped charon of router %s and removed its files", self.router_id)

    # -- VICI ----------------------------------------------------------------
    @contextlib.contextmanager
    def session(self, timeout_s: float | None = 10) -> Iterator[vici.Session]:
        """A VICI session on a socket of its own (sessions are not thread-safe)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout_s)
        try:
            sock.connect(self.vici_path)
            yield vici.Session(sock)
        finally:
            sock.close()

    def _loaded_file(self) -> str:
        return os.path.join(self.dir, "loaded.json")

    def loaded(self) -> dict[str, Any]:
        """What each loaded connection was loaded with, by name: a
        :func:`~.rotation.fingerprint` (an older agent saved one digest); empty if unknown."""
        try:
            with open(self._loaded_file()) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def _save_loaded(self, loaded: Mapping[str, Any]) -> None:
        tmp = self._loaded_file() + ".tmp"
        with open(tmp, "w") as f:
            json.dump(dict(loaded), f)
        os.replace(tmp, self._loaded_file())

    def _replacing_file(self) -> str:
        return os.path.join(self.dir, "replacing.json")

    def _read_replacing(self) -> dict[str, rotation.Replacement]:
        try:
            with open(self._replacing_file()) as f:
                return {r["name"]: rotation.Replacement.from_json(r) for r in json.load(f)}
        except (OSError, ValueError, KeyError, TypeError):
            return {}

    def _save_replacing(self) -> None:
        if not os.path.isdir(self.dir):
            return
        tmp = self._replacing_file() + ".tmp"
        with open(tmp, "w") as f:
            json.dump([r.to_json() for r in self._replacing.values()], f)
        os.replace(tmp, self._replacing_file())

    def forget_loaded(self) -> None:
        """Forget what was loaded: the next apply loads everything (a new charon has nothing)."""
        self._replacing.clear()
        for path in (self._loaded_file(), self._replacing_file()):
            try:
                os.unlink(path)
            except OSError:
                pass

    def apply(self, desired: Mapping[str, tuple[dict, dict]],
              changing: Callable[[str], None] | None = None) -> list[str]:
        """Make the loaded connections equal ``desired`` ({name: (load-conn, load-shared)}).

        Only connections whose configuration changed are touched, make-before-break
        (see :mod:`.rotation`): the new configuration is loaded beside the live SAs,
        new SAs are initiated, and the old ones are closed by :meth:`retire_replaced`
        once new ones carry the connection. Connections removed are closed and unloaded.
        ``changing(name)`` is called before a connection is loaded or changed (what its
        older SAs say from then on is not about the new configuration). Returns the
        names of the connections loaded or changed.
        """
        changed: list[str] = []
        with self._lock, self.session() as session:
            loaded = self.loaded()
            try:
                entries = list(session.list_sas())
                present = {_text(n) for c in session.list_conns() for n in c}
                for name in sorted((set(loaded) | present) - set(desired)):
                    self._terminate(session, name)
                    session.unload_conn({"name": name})
                    self._unload_secret(session, name)
                    loaded.pop(name, None)
                    self._replacing.pop(name, None)
                    LOG.info("Router %s: unloaded %s", self.router_id, name)
                for name, (conn, secret) in desired.items():
                    wanted = rotation.fingerprint(conn, secret)
                    kind = rotation.plan(loaded.get(name), wanted) if name in present \
                        else "reload"
                    if kind != "unchanged" and not rotation.hitless(conn):
                        kind = "reload"
                    if kind == "unchanged" or (loaded.get(name) == digest(
                            {"conn": conn, "secret": secret}) and name in present):
                        continue   # (the second test: saved by an older agent, unchanged)
                    # loaded by an older agent (one digest) or IKEv1: break-before-make
                    legacy = name in present and (not rotation.hitless(conn) or (
                        name in loaded and not isinstance(loaded[name], dict)))
                    if changing is not None:
                        changing(name)
                    self._change(session, name, conn, secret, kind, entries, legacy)
                    loaded[name] = wanted
                    changed.append(name)
            finally:
                self._save_loaded(loaded)
                self._save_replacing()
        return changed

    def _change(self, session: vici.Session, name: str, conn: dict, secret: dict,
                kind: rotation.Kind, entries: list[dict[str, Any]], legacy: bool) -> None:
        """Load one new or changed connection and start its new SAs (see :mod:`.rotation`)."""
        body, starts = rotation.for_charon(conn)
        old = rotation.sa_ids(entries, name)
        if kind == "reload" and legacy:
            # Loaded by an older agent, with start_action start (replacing or unloading
            # it closes its SAs anyway), or IKEv1: break-before-make.
            self._terminate(session, name)
            # Unloaded too: charon does not start a connection reloaded unchanged
            # (only its PSK changed), which would stay down.
            session.unload_conn({"name": name})
            old = rotation.SAIds()
        self._load(session.load_shared, "load-shared", name, secret)
        if kind != "reauth":
            self._load(session.load_conn, "load-conn", name, body)
        if not old.ike:   # nothing up: start it as a new connection
            self._initiate(session, starts, name)
            LOG.info("Router %s: loaded %s", self.router_id, name)
            return
        replacing = rotation.Replacement(name, old, children_first=kind == "child",
                                         reauth=kind == "reauth", children=starts,
                                         next_try_at=time.monotonic() + rotation.RETRY_S)
        self._replacing[name] = replacing
        self._start_replacement(session, replacing)
        LOG.info("Router %s: %s changed: %s beside the old SAs", self.router_id, name,
                 "a reauthentication with the new PSK" if replacing.reauth
                 else "a new IKE_SA is initiated")

    def _start_replacement(self, session: vici.Session, replacing: rotation.Replacement) -> None:
        if not replacing.children:
            return   # response-only: the peer initiates the new SAs
        if replacing.reauth:   # charon's make-before-break reauthentication
            for ike_id in sorted(replacing.old.ike):
                self._command(session.rekey, {"ike-id": ike_id, "reauth": "yes"})
        else:
            self._initiate(session, replacing.children, replacing.name)

    def retire_replaced(self, entries: list[dict[str, Any]]) -> None:
        """Close the old SAs of the connections whose new SAs are up (``entries``: a
        fresh ``list-sas``), CHILD_SAs first after a change of the children (see
        :class:`~.rotation.Replacement`); try again those still waiting after
        :data:`~.rotation.RETRY_S`; close IKE_SAs left without CHILD_SA beside one
        carrying their connection (:func:`~.rotation.childless_duplicates`)."""
        with self._lock:
            duplicates = {name: ids for name, ids in
                          rotation.childless_duplicates(entries).items()
                          if name not in self._replacing}
            if not self._replacing and not duplicates:
                return
            now = time.monotonic()
            with self.session() as session:
                for name, ike_ids in duplicates.items():
                    self._close_all(session, "ike-id", ike_ids)
                    LOG.info("Router %s: %s closed IKE_SAs without CHILD_SA %s beside the one "
                             "carrying it", self.router_id, name, sorted(ike_ids))
                for name, replacing in list(self._replacing.items()):
                    self._retire(session, replacing, entries, now)
            self._save_replacing()

    def _retire(self, session: vici.Session, replacing: rotation.Replacement,
                entries: list[dict[str, Any]], now: float) -> None:
        """One step of one connection's change (see :meth:`retire_replaced`).

        New IKE_SAs without CHILD_SA (the peer refused it while its configuration
        differed) are closed only when the connection is up on a new SA, or before the
        next try: a peer that changes its configuration meanwhile may add its new
        CHILD_SA to one of them (charon reuses an IKE_SA), and closing it under that
        CHILD_SA cut the tunnel for seconds (measured against a plain strongSwan)."""
        name = replacing.name
        old_ikes = replacing.old_ikes(entries)
        attempts = replacing.failed_attempts(entries)
        if replacing.children_closed_at is not None:
            if now - replacing.children_closed_at >= rotation.CLOSE_IKE_AFTER_S:
                self._close_all(session, "ike-id", old_ikes | attempts)
                del self._replacing[name]
                LOG.info("Router %s: %s closed its old IKE_SAs %s", self.router_id, name,
                         sorted(old_ikes))
        elif replacing.replaced(entries):
            children = replacing.old_children(entries)
            if replacing.children_first and children:
                self._close_all(session, "child-id", children)
                self._close_all(session, "ike-id", attempts)
                replacing.children_closed_at = now
                LOG.info("Router %s: %s is up on a new IKE_SA; closed the old CHILD_SAs %s",
                         self.router_id, name, sorted(children))
            else:
                self._close_all(session, "ike-id", old_ikes | attempts)
                del self._replacing[name]
                LOG.info("Router %s: %s is up on a new IKE_SA; closed the old IKE_SAs %s",
                         self.router_id, name, sorted(old_ikes))
        elif now >= replacing.next_try_at:
            replacing.next_try_at = now + rotation.RETRY_S
            if replacing.children:
                self._close_all(session, "ike-id", attempts)
            self._start_replacement(session, replacing)

    def _close_all(self, session: vici.Session, key: str, ids: Iterable[str]) -> None:
        for unique_id in sorted(ids):
            self._close(session, {key: unique_id})

    def replacing(self) -> set[str]:
        """The connections whose old SAs wait for new ones."""
        with self._lock:
            return set(self._replacing)

    def _initiate(self, session: vici.Session, children: list[str], name: str) -> None:
        for child in children:
            self._command(session.initiate, {"child": child, "ike": name, "timeout": "-1"})

    def _close(self, session: vici.Session, selector: dict[str, str]) -> None:
        self._command(session.terminate, {**selector, "timeout": "-1"})

    def _command(self, command: Callable[[dict], Any], message: dict) -> None:
        """A VICI command whose failure is logged, not raised (charon retries, or the
        next sync does); streamed commands are read to their end."""
        try:
            result = command(message)
            if hasattr(result, "__next__"):
                for _ in result:
                    pass
        except vici.exception.CommandException as err:
            LOG.info("Router %s: charon answered %s to %s", self.router_id, err,
                     {k: v for k, v in message.items() if k != "timeout"})

    def _load(self, command: Callable[[dict], Any], what: str, name: str, message: dict) -> None:
        """One VICI load; a refusal is raised naming router, command and connection.

        Never the message: a ``load-shared`` message holds the PSK, and this error
        ends up in the agent's log.
        """
        try:
            command(message)
        except vici.exception.CommandException as err:
            raise CharonRefused(f"charon of router {self.router_id} refused {what} for "
                                f"{name}: {err}") from None

    @staticmethod
    def _terminate(session: vici.Session, name: str) -> None:
        try:
            for _ in session.terminate({"ike": name, "timeout": "-1", "force": "yes"}):
                pass
        except vici.exception.CommandException:
            pass  # nothing to terminate

    @staticmethod
    def _unload_secret(session: vici.Session, name: str) -> None:
        try:
            session.unload_shared({"id": name})
        except vici.exception.CommandException:
            pass

    def list_sas(self) -> list[dict[str, Any]]:
        """``list-sas`` as charon answers it: one ``{connection name: IKE SA}`` per IKE SA."""
        with self.session() as session:
            return list(session.list_sas())

    def sas(self, entries: list[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
        """``{connection name: {"up": bool, "spis": [...], and each of TRAFFIC_COUNTERS}}``
        from the installed CHILD_SAs (VICI names the counters ``bytes-in``...), of
        ``entries`` (default: a fresh ``list-sas``)."""
        result: dict[str, dict[str, Any]] = {}
        if entries is None:
            entries = self.list_sas()
        for entry in entries:
            for name, ike in entry.items():
                info = result.setdefault(_text(name), {
                    "up": False, "spis": [], **dict.fromkeys(TRAFFIC_COUNTERS, 0)})
                for child in (ike.get("child-sas") or {}).values():
                    if _text(child.get("state", "")) != "INSTALLED":
                        continue
                    info["up"] = info["up"] or _text(ike.get("state", "")) == "ESTABLISHED"
                    for key in TRAFFIC_COUNTERS:
                        info[key] += int(_text(child.get(key.replace("_", "-"), "0")))
                    info["spis"].append(_text(child.get("spi-in", "")))
        return result

    EVENTS = ("log", "ike-updown", "child-updown", "ike-rekey", "child-rekey")

    def events(self, stop: threading.Event, tick_s: float = 1.0
               ) -> Iterator[tuple[str | None, dict[str, Any]]]:
        """``(label, data)`` of charon's log messages and of SA up/down and rekey events,
        and ``(None, {})`` each ``tick_s`` without one, until charon goes away or ``stop``."""
        with self.session(timeout_s=None) as session:
            for label, data in session.listen(list(self.EVENTS), timeout=tick_s):
                if stop.is_set():
                    return
                yield (None, {}) if label is None else (_text(label), dict(data or {}))
