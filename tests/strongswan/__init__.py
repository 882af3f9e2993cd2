"""strongSwan: the API → VICI mapping, and the service driver refusing what it cannot do."""
