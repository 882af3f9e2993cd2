"""RPC names and version (documented in docs/rpc.md)."""

SERVER_TOPIC = "isthmus-vpn-server"   # agent -> server calls
AGENT_TOPIC = "isthmus-vpn-agent"     # server -> agent casts, addressed by host
VERSION = "1.3"                       # what the server and agents speak
# 1.1 added router_ids to get_vpn_services_on_host; 1.2 added get_routers_on_host and
# update_router_status; 1.3 lets update_status carry a connection's status_detail
# as an object (isthmus.diagnosis.StatusDetail) instead of a sentence. Agents call each method with the version that introduced it,
# so they keep working with older servers (which answer the new calls with an error).
BASE_VERSION = "1.1"
ROUTERS_VERSION = "1.2"
DETAILS_VERSION = "1.3"
