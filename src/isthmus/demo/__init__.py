"""``isthmus demo``: two VPN sites in network namespaces, a real tunnel, and a ping."""
