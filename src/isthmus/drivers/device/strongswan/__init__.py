"""The strongSwan device driver: one charon per router, configured over VICI."""
