"""RPC names and version (documented in docs/rpc.md)."""

SERVER_TOPIC = "isthmus-vpn-server"   # agent -> server calls
AGENT_TOPIC = "isthmus-vpn-agent"     # server -> agent casts, addressed by host
VERSION = "1.1"                       # 1.1 added router_ids to get_vpn_services_on_host
