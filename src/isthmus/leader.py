"""The leader lease: the deployment's background work runs in one server process at a time.

Every server process (each worker of ``isthmus server --workers N``, each server
of a deployment, each uWSGI or gunicorn worker) serves the API and answers
agents, but the periodic work that concerns the whole deployment (the dead-agent
watch, the event retention purge) must run once, not once per process. The
processes share only the database, so the lease is a row there (table
``leases``): ``holder`` runs the work until ``expires_at``. A process takes it
with one atomic ``UPDATE ... WHERE holder = me OR expires_at < now`` (the
first ever takes it with an ``INSERT``, which the primary key lets only one
win), so the same statement works on SQLite, PostgreSQL and MariaDB without
advisory locks.

The holder renews every third of ``leader_lease_time`` and considers itself
the leader for two thirds of it after each renewal it started, so a holder
that stalls stops a third of the lease before another may take over. If the
holder dies, another process takes over within ``leader_lease_time`` (plus a
third of it); one that stops cleanly releases the lease, and another takes over
at its next try. Expiry is compared with the wall clocks of the servers, as
agents' heartbeats are: keep the servers' clocks in sync (NTP).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from isthmus.db import Database
from isthmus.db.models import Lease
from isthmus.periodic import Periodic

LOG = logging.getLogger(__name__)

LEASES = Lease.__table__
BACKGROUND = "background"
"""The lease whose holder runs the dead-agent watch and the event purge."""


def _utcnow() -> datetime:
    """UTC, naive, whole seconds: what a DateTime column keeps on every backend."""
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def process_name() -> str:
    """This process as a lease holder: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class LeaderLease:
    """Takes and renews the lease ``name`` for this process; :meth:`held` says whether
    it is the leader now.

    :meth:`start` renews in a thread of its own every third of ``ttl_s``;
    :meth:`stop` ends that and releases the lease.
    """

    def __init__(self, db: Database, ttl_s: int, name: str = BACKGROUND,
                 holder: str | None = None) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self.name = name
        self.holder = holder or process_name()
        self.renew_interval_s = max(0.5, ttl_s / 3)
        self._valid_until = 0.0          # time.monotonic() after which it is not held
        self._leader_seen: str | None = None
        self._renewing = Periodic(f"lease-{name}", self.renew_interval_s, self.try_take,
                                  run_first=True)

    def held(self) -> bool:
        """Whether this process holds the lease now (a renewal succeeded recently enough)."""
        return time.monotonic() < self._valid_until

    def try_take(self) -> bool:
        """Take or renew the lease if it is free, expired or already ours; whether we hold it."""
        started = time.monotonic()
        at = _utcnow()
        holder: str | None = None
        try:
            with self.db.write() as conn:
                taken = conn.execute(sa.update(LEASES).where(
                    LEASES.c.name == self.name,
                    sa.or_(LEASES.c.holder == self.holder, LEASES.c.expires_at < at)).values(
                    holder=self.holder,
                    expires_at=at + timedelta(seconds=self.ttl_s))).rowcount == 1
                if not taken:
                    holder = conn.execute(sa.select(LEASES.c.holder).where(
                        LEASES.c.name == self.name)).scalar()
                    if holder is None:   # the first process of the deployment, ever
                        conn.execute(sa.insert(LEASES).values(
                            name=self.name, holder=self.holder,
                            expires_at=at + timedelta(seconds=self.ttl_s)))
                        taken = True
        except IntegrityError:   # another process inserted the row first: it holds it
            taken = False
        was_held = self.held()
        if taken:
            self._valid_until = started + self.ttl_s - self.renew_interval_s
            if not was_held:
                LOG.info("Lease %r taken by %s: this process runs the deployment's "
                         "background work", self.name, self.holder)
        else:
            self._valid_until = 0.0
            if was_held:
                LOG.warning("Lease %r lost by %s to %s: this process stops the "
                            "deployment's background work", self.name, self.holder, holder)
            elif holder is not None and holder != self._leader_seen:
                LOG.info("Lease %r is held by %s: it runs the deployment's background work",
                         self.name, holder)
        self._leader_seen = self.holder if taken else holder
        return taken

    def release(self) -> None:
        """Give the lease up if we hold it, so that another process takes it at once."""
        self._valid_until = 0.0
        with self.db.write() as conn:
            released = conn.execute(sa.update(LEASES).where(
                LEASES.c.name == self.name, LEASES.c.holder == self.holder).values(
                expires_at=_utcnow() - timedelta(seconds=1))).rowcount
        if released:
            LOG.info("Lease %r released by %s", self.name, self.holder)

    def start(self) -> "LeaderLease":
        """Start renewing (the first try is at once); returns ``self``."""
        self._renewing.start()
        return self

    def stop(self) -> None:
        """Stop renewing and release the lease."""
        self._renewing.stop()
        self.release()
