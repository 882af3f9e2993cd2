"""RPC between the server (service drivers) and the agents (device drivers): docs/rpc.md.

Two processes use this package, so it is split by side and this ``__init__``
imports nothing either side does not need:

- shared: :mod:`~isthmus.rpc.topics` (names, version), :mod:`~isthmus.rpc.transport`
  (oslo.messaging transport and options), :mod:`~isthmus.rpc.schema` (payload schemas),
  :mod:`~isthmus.rpc.probe` (is the bus reachable);
- agent side: :mod:`~isthmus.rpc.agent_side` (calls to the server, the endpoint for its casts);
- server side: :mod:`~isthmus.rpc.server_side` (the endpoint answering agents, which reads the
  database, and the caster) and :mod:`~isthmus.rpc.sender` (background casts).

An agent never imports the server side: that would load the database layer and
SQLAlchemy into every agent (``tests/agent/test_imports.py``).
"""

import os

# oslo.messaging imports oslo.service, which imports eventlet, whose DNS resolver pulls
# in dnspython and cryptography: ~0.9 s of start-up for code Isthmus never runs
# (it uses the threading executor, not eventlet). This switch is eventlet's own; it is
# set here, in the package both sides import before any oslo.messaging module.
os.environ.setdefault("EVENTLET_NO_GREENDNS", "yes")

from isthmus.rpc.transport import get_transport  # noqa: E402

__all__ = ["get_transport"]
