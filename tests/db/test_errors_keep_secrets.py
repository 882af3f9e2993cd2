"""A row the database refuses is not quoted into the log (PostgreSQL's DETAIL holds it whole)."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from isthmus.db import Database, models
from isthmus.exceptions import Conflict
from isthmus.services import Services
from tests.conftest import BACKENDS
from tests.leaks import canary, every_log_line, leaks


@pytest.mark.skipif("postgresql" not in BACKENDS, reason="PostgreSQL is not under test")
def test_refused_row_with_a_psk_is_logged_without_it(server_databases):
    services = Services(Database(server_databases["postgresql"]))
    psk = canary()
    row = {"id": str(uuid.uuid4()), "project_id": "p", "name": "", "description": "",
           "peer_address": None,   # NOT NULL: PostgreSQL answers "Failing row contains (...)"
           "peer_id": "peer", "local_id": "", "route_mode": "static", "mtu": 1500,
           "initiator": "bi-directional", "auth_mode": "psk", "psk": psk,
           "dpd_action": "hold", "dpd_interval": 30, "dpd_timeout": 120, "status": "DOWN",
           "admin_state_up": True, "vpnservice_id": str(uuid.uuid4()),
           "ikepolicy_id": str(uuid.uuid4()), "ipsecpolicy_id": str(uuid.uuid4())}
    try:
        with every_log_line() as lines, pytest.raises(Conflict):
            services._write(lambda conn: conn.execute(
                sa.insert(models.Base.metadata.tables["ipsec_site_connections"]), row))
    finally:
        services.db.dispose()
    assert any("Concurrent change refused" in line for line in lines), lines
    assert not leaks([psk], "\n".join(lines)), "the refused row reached the log"
