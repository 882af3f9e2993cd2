"""The TypedDicts of isthmus.rpc.payloads name the same keys as the JSON schemas."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import pytest

from isthmus import diagnosis
from isthmus.rpc import payloads
from isthmus.rpc.schema import CONNECTION, SCHEMAS, SERVICE

_STATUSES = SCHEMAS["update_status"]["properties"]["statuses"]["items"]
_CONN_REPORT = _STATUSES["properties"]["ipsec_site_connections"]["additionalProperties"]
_AGENT_STATE = SCHEMAS["report_state"]["properties"]["agent_state"]
_CONN = CONNECTION["properties"]

PAIRS = [
    (payloads.Service, SERVICE),
    (payloads.Connection, CONNECTION),
    (payloads.Dpd, _CONN["dpd"]),
    (payloads.IKEPolicy, _CONN["ikepolicy"]),
    (payloads.IPsecPolicy, _CONN["ipsecpolicy"]),
    (payloads.Lifetime, _CONN["ikepolicy"]["properties"]["lifetime"]),
    (payloads.ServiceReport, _STATUSES),
    (payloads.ConnectionReport, _CONN_REPORT),
    (payloads.Traffic, _CONN_REPORT["properties"]["traffic"]),
    (payloads.AgentState, _AGENT_STATE),
]


@pytest.mark.parametrize("typed, schema", PAIRS, ids=[t.__name__ for t, _ in PAIRS])
def test_typeddict_matches_schema(typed, schema):
    assert set(typing.get_type_hints(typed)) == set(schema["properties"])
    assert typed.__required_keys__ == set(schema.get("required", ()))


def test_statuses_match_schema():
    assert set(typing.get_args(payloads.Status)) == set(SERVICE["properties"]["status"]["enum"])
    assert set(typing.get_args(payloads.ReportedStatus)) == \
        set(_STATUSES["properties"]["status"]["enum"])


def _imports(module) -> set[str]:
    tree = ast.parse(Path(module.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    return imported | {node.module for node in ast.walk(tree)
                       if isinstance(node, ast.ImportFrom)}


def test_imports_nothing_of_isthmus():
    """Both the server and the agent load it; it must not pull in the server (the
    reason codes it shares with both import only the standard library)."""
    assert _imports(payloads) <= {"typing", "isthmus.diagnosis"}
    assert _imports(diagnosis) <= {"dataclasses", "typing"}
