"""Changing a live connection make-before-break: what to renegotiate, and when the old SAs go.

Pure functions, no I/O; :class:`~.charon.Charon` runs them against charon.

Why the driver does it and not charon alone (strongSwan 5.9, read from its source):

* ``load-conn`` over a loaded connection, and ``unload-conn``, undo the old
  configuration's ``start_action``: with ``start`` that *terminates* its SAs
  (vici_config.c ``clear_start_action``), which was Isthmus's outage. So a
  connection is loaded without ``start`` (:func:`for_charon`) and the driver
  initiates it itself; undoing ``trap`` only uninstalls the trap policy.
* A live IKE_SA keeps the peer and child configurations it was made from.
  ``rekey`` renegotiates with those (old proposals), and so does a
  reauthentication (``trigger_mbb_reauth`` copies the old IKE_SA's configs).
  New proposals need a new SA made from the new configuration: ``initiate``.
  With ``charon.reuse_ikesa = no`` that is a new IKE_SA even when the IKE part is
  unchanged: its CHILD_SA is installed after IKE_AUTH, with no key exchange of its
  own. (A CHILD_SA added to the live IKE_SA, with its PFS key exchange, left the
  two sides' installs 15 ms apart on a loaded machine instead of 3 ms: see
  "What is not zero" in docs/strongswan.md.)
* A PSK is looked up when an IKE_SA authenticates; only a new IKE_SA uses a new
  one. The configuration is unchanged, so a make-before-break reauthentication
  (``charon.make_before_break``) makes it, and charon deletes the old IKE_SA
  once the new one has its CHILD_SAs.
* The side that receives the Delete of an old SA re-creates it from its *old*
  configuration when ``close_action`` is ``start`` (ike_delete.c, child_delete.c),
  unless that IKE_SA is itself being reauthenticated. After a PSK change both
  Isthmus sides have asked for a reauthentication (the first one failed while
  the sides disagreed), so nothing is re-created; after a proposal change see
  :class:`Replacement` for the order the old SAs are closed in.

The kinds of change (:func:`plan`), by what differs between two :func:`fingerprint`:

=====================  =================================================================
what changed           what the driver does
=====================  =================================================================
nothing                nothing (the SAs stay)
IKE part (proposals,   ``load-conn``, ``initiate``: a new IKE_SA with its CHILD_SAs;
IDs, timers...)        the old IKE_SAs are closed once a new one carries a CHILD_SA
children only (ESP,    ``load-conn``, ``initiate``: a new IKE_SA with its CHILD_SAs;
selectors...)          once it carries one, the old CHILD_SAs are closed, and
                       :data:`CLOSE_IKE_AFTER_S` later the old IKE_SAs
the PSK only           ``load-shared``, ``rekey reauth``: charon's make-before-break
                       reauthentication (the old IKE_SA goes when the new one is up)
unknown (loaded by an  break-before-make, as before: terminate, unload, load
older agent), or IKEv1
=====================  =================================================================

While the peer still has the old configuration the new SA fails (the peer refuses
the PSK or the proposals) and the old one keeps carrying traffic; the new one comes
up when the peer changes too (an Isthmus peer initiates then; the driver also tries
again every :data:`RETRY_S`). New IKE_SAs left without a CHILD_SA (the peer took the
IKE_SA, refused the CHILD_SA) are closed: :meth:`Replacement.failed_attempts`,
:func:`childless_duplicates`. A change under way is saved (:meth:`Replacement.to_json`)
so that an agent restarted meanwhile finishes it.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Mapping

RETRY_S = 10.0
"""While a replacement is not up, how often the driver initiates it again."""

CLOSE_IKE_AFTER_S = 2.0
"""How long after closing a replaced connection's old CHILD_SAs its old IKE_SAs go."""

Kind = Literal["unchanged", "reload", "ike", "child", "reauth"]


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def fingerprint(conn: Mapping[str, Any], secret: Mapping[str, Any]) -> dict[str, str]:
    """Digests of a connection's IKE part, its children and its PSK (``load-conn`` body
    ``{name: {...}}`` and ``load-shared`` body): what :func:`plan` compares."""
    (body,) = conn.values()
    return {"ike": _digest({k: v for k, v in body.items() if k != "children"}),
            "children": _digest(body.get("children") or {}),
            "secret": _digest(secret)}


def plan(before: Any, after: Mapping[str, str]) -> Kind:
    """How to go from the loaded ``before`` (a :func:`fingerprint`, or what an older
    agent saved: a string, or nothing) to ``after``."""
    if not isinstance(before, Mapping) or set(before) != set(after):
        return "reload"
    if before["ike"] != after["ike"]:
        return "ike"
    if before["children"] != after["children"]:
        return "child"
    if before["secret"] != after["secret"]:
        return "reauth"
    return "unchanged"


def hitless(conn: Mapping[str, Any]) -> bool:
    """Whether a change of this connection (``load-conn`` body) is made make-before-break:
    IKEv2 only. IKEv1 always reuses its ISAKMP SA for new CHILD_SAs, and charon's
    make-before-break reauthentication is IKEv2's; an IKEv1 connection is closed and
    loaded again (break-before-make), as before."""
    return all(str(body.get("version", "2")) == "2" for body in conn.values())


def for_charon(conn: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The ``load-conn`` body to load and the children to initiate: ``start`` is taken
    out of every child's ``start_action`` (see the module docstring), and ``unique`` is
    ``never``.

    ``unique never``: this side sends no INITIAL_CONTACT. When a peer reloads a changed
    connection it closes its SAs and initiates new ones; the Delete made this side
    re-create its old SA (``close_action start``) at the same time, with no other IKE_SA
    left, so with INITIAL_CONTACT, and the peer then destroyed every other IKE_SA with
    us, its brand new one included, without a Delete: 3 s without traffic, until DPD
    (measured against a plain strongSwan). The price: a peer's INITIAL_CONTACT no longer
    removes our IKE_SAs left from before its restart either; they carry nothing (the
    newest CHILD_SA sends) and DPD removes them."""
    loaded = copy.deepcopy(dict(conn))
    starts: list[str] = []
    for body in loaded.values():
        body["unique"] = "never"
        for child_name, child in (body.get("children") or {}).items():
            actions = [a for a in str(child.get("start_action", "none")).split("|")
                       if a and a != "none"]
            if "start" in actions:
                starts.append(child_name)
                actions.remove("start")
            child["start_action"] = "|".join(actions) or "none"
    return loaded, starts


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class SAIds:
    """The unique ids of one connection's IKE_SAs and CHILD_SAs at one moment."""

    ike: frozenset[str] = frozenset()
    child: frozenset[str] = frozenset()


def sa_ids(entries: Iterable[Mapping[str, Any]], name: str) -> SAIds:
    """The SAs of connection ``name`` in ``list-sas`` ``entries``."""
    ike: set[str] = set()
    child: set[str] = set()
    for entry in entries:
        for conn, sa in entry.items():
            if _text(conn) != name:
                continue
            ike.add(_text(sa.get("uniqueid", "")))
            child.update(_text(c.get("uniqueid", "")) for c in (sa.get("child-sas") or {}).values())
    return SAIds(frozenset(ike), frozenset(child))


def childless_duplicates(entries: Iterable[Mapping[str, Any]]) -> dict[str, set[str]]:
    """IKEv2 IKE_SAs up for :data:`CLOSE_IKE_AFTER_S` without a CHILD_SA while another
    IKE_SA of their connection carries an INSTALLED one, by connection name: left by a
    change (a side re-created an old SA from its old configuration after the other
    closed it, and the other refused its CHILD_SA). Nobody re-creates an IKE_SA without
    CHILD_SAs that is closed. Alone, such an IKE_SA is the state to diagnose: kept."""
    carrying: set[str] = set()
    childless: dict[str, set[str]] = {}
    for entry in entries:
        for conn, sa in entry.items():
            name = _text(conn)
            children = (sa.get("child-sas") or {}).values()
            if any(_text(c.get("state", "")) == "INSTALLED" for c in children):
                carrying.add(name)
            elif not children and _text(sa.get("state", "")) == "ESTABLISHED" and \
                    _text(sa.get("version", "2")) == "2" and \
                    int(_text(sa.get("established", "0"))) >= CLOSE_IKE_AFTER_S:
                childless.setdefault(name, set()).add(_text(sa.get("uniqueid", "")))
    return {name: ids for name, ids in childless.items() if name in carrying}


@dataclass
class Replacement:
    """A connection whose old SAs wait for a new IKE_SA to carry it.

    With ``children_first`` (only the children changed: ESP proposals, selectors...)
    they are closed in two steps: the old CHILD_SAs, then, :data:`CLOSE_IKE_AFTER_S`
    later, the old IKE_SAs, by then without CHILD_SAs. A peer re-creates an IKE_SA
    deleted under it only for its CHILD_SAs (``close_action``), and a CHILD_SA it
    re-creates in the old IKE_SA from its old configuration is refused: that IKE_SA
    took the new children when the connection was loaded again ("updated vici
    connection"). After a change of the IKE part the old IKE_SA kept its old
    configuration, old children included, so the old IKE_SAs are closed at once: a
    peer re-creating one from its old configuration proposes the old IKE proposals,
    which are refused (a change of other IKE settings, DPD or lifetimes, leaves such
    a peer a second IKE_SA)."""

    name: str
    old: SAIds
    children_first: bool = True
    reauth: bool = False   # a new PSK: charon reauthenticates (and closes the old IKE_SA)
    children: list[str] = field(default_factory=list)   # to initiate again (empty: the peer will)
    next_try_at: float = 0.0
    children_closed_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        """What :meth:`from_json` reads back (charon's unique ids outlive an agent restart,
        and so does a replacement under way; the times are ``time.monotonic()``'s, which
        count from the boot)."""
        return {"name": self.name, "old_ike": sorted(self.old.ike),
                "old_child": sorted(self.old.child), "children_first": self.children_first,
                "reauth": self.reauth, "children": list(self.children),
                "next_try_at": self.next_try_at, "children_closed_at": self.children_closed_at}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Replacement":
        """A replacement saved by :meth:`to_json`."""
        return cls(name=data["name"], old=SAIds(frozenset(data["old_ike"]),
                                                frozenset(data["old_child"])),
                   children_first=bool(data["children_first"]), reauth=bool(data["reauth"]),
                   children=list(data["children"]), next_try_at=float(data["next_try_at"]),
                   children_closed_at=data.get("children_closed_at"))

    def replaced(self, entries: Iterable[Mapping[str, Any]]) -> bool:
        """Whether a new SA carries the connection now: an ESTABLISHED IKE_SA that is not
        an old one, with an INSTALLED CHILD_SA."""
        for entry in entries:
            for conn, sa in entry.items():
                if _text(conn) != self.name or _text(sa.get("state", "")) != "ESTABLISHED" \
                        or _text(sa.get("uniqueid", "")) in self.old.ike:
                    continue
                if any(_text(c.get("state", "")) == "INSTALLED"
                       for c in (sa.get("child-sas") or {}).values()):
                    return True
        return False

    def old_children(self, entries: Iterable[Mapping[str, Any]]) -> frozenset[str]:
        """The CHILD_SAs in the old IKE_SAs now (the old ones, and any re-created there)."""
        return frozenset(
            _text(c.get("uniqueid", "")) for entry in entries for conn, sa in entry.items()
            if _text(conn) == self.name and _text(sa.get("uniqueid", "")) in self.old.ike
            for c in (sa.get("child-sas") or {}).values())

    def _childless(self, entries: Iterable[Mapping[str, Any]]) -> dict[str, int]:
        return {_text(sa.get("uniqueid", "")): int(_text(sa.get("established", "0")))
                for entry in entries for conn, sa in entry.items()
                if _text(conn) == self.name and _text(sa.get("uniqueid", "")) not in self.old.ike
                and _text(sa.get("state", "")) == "ESTABLISHED" and not sa.get("child-sas")}

    def failed_attempts(self, entries: Iterable[Mapping[str, Any]]) -> frozenset[str]:
        """New IKE_SAs up for :data:`CLOSE_IKE_AFTER_S` without a CHILD_SA: the peer took
        the IKE_SA but refused its CHILD_SA (its ESP configuration still differs). Closed
        once the connection is up on a new SA, or before the next try (no side re-creates
        an IKE_SA without CHILD_SAs)."""
        return frozenset(ike for ike, age_s in self._childless(entries).items()
                         if age_s >= CLOSE_IKE_AFTER_S)

    def old_ikes(self, entries: Iterable[Mapping[str, Any]]) -> frozenset[str]:
        """The old IKE_SAs still there."""
        return self.old.ike & sa_ids(entries, self.name).ike
