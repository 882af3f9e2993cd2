"""RPC between the server (service drivers) and the agents (device drivers): docs/rpc.md."""

from isthmus.rpc.client import AgentEndpoint, ServerClient, start_agent_rpc_server
from isthmus.rpc.sender import RouterUpdateSender
from isthmus.rpc.server import AgentNotifier, ServerEndpoint, start_rpc_server
from isthmus.rpc.transport import get_transport

__all__ = ["AgentEndpoint", "AgentNotifier", "RouterUpdateSender", "ServerClient",
           "ServerEndpoint", "get_transport", "start_agent_rpc_server", "start_rpc_server"]
