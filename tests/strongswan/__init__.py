"""strongSwan: the API → VICI mapping and the service driver that refuses what strongSwan cannot do."""
