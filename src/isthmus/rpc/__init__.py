"""RPC between the server (service drivers) and the agents (device drivers): docs/rpc.md."""

import os

# oslo.messaging imports oslo.service, which imports eventlet, whose DNS resolver pulls
# in dnspython and cryptography: ~0.9 s of start-up for code Isthmus never runs
# (it uses the threading executor, not eventlet). This switch is eventlet's own.
os.environ.setdefault("EVENTLET_NO_GREENDNS", "yes")

from isthmus.rpc.client import AgentEndpoint, ServerClient, start_agent_rpc_server
from isthmus.rpc.sender import RouterUpdateSender
from isthmus.rpc.server import AgentNotifier, ServerEndpoint, start_rpc_server
from isthmus.rpc.transport import get_transport

__all__ = ["AgentEndpoint", "AgentNotifier", "RouterUpdateSender", "ServerClient",
           "ServerEndpoint", "get_transport", "start_agent_rpc_server", "start_rpc_server"]
