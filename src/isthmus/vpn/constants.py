"""Allowed values of the VPN attributes, as in Neutron 29 with ``vpn-no-sha1-3des``."""

ENCRYPTION_ALGORITHMS = (
    "aes-128", "aes-192", "aes-256",
    *(f"aes-{bits}-{mode}-{icv}" for mode in ("ccm", "gcm") for icv in (8, 12, 16)
      for bits in (128, 192, 256)),
    "aes-128-ctr", "aes-192-ctr", "aes-256-ctr",
)
AUTH_ALGORITHMS = ("sha256", "sha384", "sha512", "aes-xcbc", "aes-cmac")
PFS_GROUPS = ("group2", "group5", *(f"group{n}" for n in range(14, 32)))
IKE_VERSIONS = ("v1", "v2")
PHASE1_MODES = ("main", "aggressive")
TRANSFORM_PROTOCOLS = ("esp", "ah", "ah-esp")
ENCAPSULATION_MODES = ("tunnel", "transport")
LIFETIME_UNITS = ("seconds",)
LIFETIME_MIN_SECONDS = 60
DPD_ACTIONS = ("hold", "clear", "restart", "disabled", "restart-by-peer")
INITIATORS = ("bi-directional", "response-only")
ENDPOINT_TYPES = ("subnet", "cidr", "network", "router", "vlan")

DEFAULT_AUTH_ALGORITHM = "sha256"
DEFAULT_ENCRYPTION_ALGORITHM = "aes-128"
DEFAULT_PFS = "group5"
DEFAULT_LIFETIME = {"units": "seconds", "value": 3600}
DEFAULT_DPD = {"action": "hold", "interval": 30, "timeout": 120}
MIN_MTU = {4: 68, 6: 1280}
