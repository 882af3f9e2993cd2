"""JSON schemas of every RPC payload (version 1.1); docs/rpc.md shows the same schemas.

Tests validate real payloads against these, so the documentation and the wire
cannot drift apart.
"""

from __future__ import annotations

from typing import Any

_STATUS = {"type": "string", "enum": ["ACTIVE", "DOWN", "ERROR", "BUILD", "PENDING_CREATE",
                                      "PENDING_UPDATE", "PENDING_DELETE"]}
_ID = {"type": "string", "minLength": 1}
_CIDRS = {"type": "array", "items": {"type": "string"}}
_LIFETIME = {"type": "object", "required": ["units", "value"], "additionalProperties": False,
             "properties": {"units": {"type": "string"}, "value": {"type": "integer"}}}
_POLICY_COMMON = {"id": _ID, "auth_algorithm": {"type": "string"},
                  "encryption_algorithm": {"type": "string"}, "pfs": {"type": "string"},
                  "lifetime": _LIFETIME}

CONNECTION = {
    "type": "object", "additionalProperties": False,
    "required": ["id", "name", "admin_state_up", "status", "peer_address", "peer_id", "local_id",
                 "mtu", "initiator", "psk", "dpd", "ikepolicy", "ipsecpolicy", "local_cidrs",
                 "peer_cidrs", "local_ip_version", "external_ip"],
    "properties": {
        "id": _ID, "name": {"type": "string"}, "admin_state_up": {"type": "boolean"},
        "status": _STATUS, "peer_address": {"type": "string"}, "peer_id": {"type": "string"},
        "local_id": {"type": "string"}, "mtu": {"type": "integer"},
        "initiator": {"type": "string", "enum": ["bi-directional", "response-only"]},
        "psk": {"type": "string"},
        "dpd": {"type": "object", "required": ["action", "interval", "timeout"],
                "additionalProperties": False,
                "properties": {"action": {"type": "string"}, "interval": {"type": "integer"},
                               "timeout": {"type": "integer"}}},
        "ikepolicy": {"type": "object", "additionalProperties": False,
                      "required": [*_POLICY_COMMON, "ike_version", "phase1_negotiation_mode"],
                      "properties": {**_POLICY_COMMON, "ike_version": {"type": "string"},
                                     "phase1_negotiation_mode": {"type": "string"}}},
        "ipsecpolicy": {"type": "object", "additionalProperties": False,
                        "required": [*_POLICY_COMMON, "transform_protocol",
                                     "encapsulation_mode"],
                        "properties": {**_POLICY_COMMON, "transform_protocol": {"type": "string"},
                                       "encapsulation_mode": {"type": "string"}}},
        "local_cidrs": _CIDRS, "peer_cidrs": _CIDRS,
        "local_ip_version": {"type": "integer", "enum": [4, 6]},
        "external_ip": {"type": ["string", "null"]},
    },
}

SERVICE = {
    "type": "object", "additionalProperties": False,
    "required": ["id", "project_id", "name", "router_id", "namespace", "provider",
                 "admin_state_up", "status", "subnet_id", "external_v4_ip", "external_v6_ip",
                 "ipsec_site_connections"],
    "properties": {
        "id": _ID, "project_id": {"type": "string"}, "name": {"type": "string"},
        "router_id": _ID, "namespace": {"type": ["string", "null"]},
        "provider": {"type": ["string", "null"]}, "admin_state_up": {"type": "boolean"},
        "status": _STATUS, "subnet_id": {"type": ["string", "null"]},
        "external_v4_ip": {"type": ["string", "null"]},
        "external_v6_ip": {"type": ["string", "null"]},
        "ipsec_site_connections": {"type": "array", "items": CONNECTION},
    },
}

_REPORTED = {"type": "string", "enum": ["ACTIVE", "DOWN", "ERROR"]}

SCHEMAS: dict[str, Any] = {
    "vpnservice_updated": {
        "type": "object", "required": ["router_id"], "additionalProperties": False,
        "properties": {"router_id": _ID}},
    "get_vpn_services_on_host": {
        "type": "object", "required": ["host"], "additionalProperties": False,
        "properties": {"host": {"type": "string"},
                       "router_ids": {"type": "array", "items": _ID}}},
    "get_vpn_services_on_host.result": {"type": "array", "items": SERVICE},
    "update_status": {
        "type": "object", "required": ["statuses"], "additionalProperties": False,
        "properties": {"statuses": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["id", "status", "updated_pending_status", "ipsec_site_connections"],
            "properties": {
                "id": _ID, "status": _REPORTED, "updated_pending_status": {"type": "boolean"},
                "ipsec_site_connections": {"type": "object", "additionalProperties": {
                    "type": "object", "additionalProperties": False,
                    "required": ["status", "updated_pending_status"],
                    "properties": {"status": _REPORTED,
                                   "updated_pending_status": {"type": "boolean"},
                                   "status_detail": {"type": ["string", "null"],
                                                     "maxLength": 255},
                                   "traffic": {
                                       "type": "object", "additionalProperties": False,
                                       "properties": {k: {"type": "integer", "minimum": 0}
                                                      for k in ("bytes_in", "bytes_out",
                                                                "packets_in",
                                                                "packets_out")}}}}}}}}}},
    "update_status.result": {"type": "integer", "minimum": 0},
    "report_state": {
        "type": "object", "required": ["agent_state"], "additionalProperties": False,
        "properties": {"agent_state": {
            "type": "object", "required": ["host", "binary", "topic", "start_flag",
                                           "configurations"],
            "properties": {"host": {"type": "string"}, "binary": {"type": "string"},
                           "topic": {"type": "string"}, "start_flag": {"type": "boolean"},
                           "configurations": {"type": "object"}}}}},
}
