"""Property-based fuzzing of every operation in /openapi.json: no request may cause a 5xx.

Schemathesis generates valid and invalid bodies, paths and query strings from
the OpenAPI document the server publishes (derived from the same attribute
tables it enforces) and calls the WSGI app in-process on a fresh database.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from isthmus.api import create_app
from isthmus.db import Database, upgrade
from isthmus.services import Services

# Schemathesis reads the schema at collection time, so the app exists at import.
_DIR = tempfile.mkdtemp(prefix="isthmus-fuzz-")
atexit.register(shutil.rmtree, _DIR, True)
_URL = f"sqlite:///{_DIR}/isthmus.db"
upgrade(_URL)
APP = create_app(Services(Database(_URL)))

schema = schemathesis.openapi.from_wsgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=int(os.environ.get("ISTHMUS_FUZZ_EXAMPLES", "25")), deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)
def test_no_server_errors(case):
    case.call_and_validate(checks=[not_a_server_error])
