"""Why a tunnel is what it is: the stable reason codes and the status detail they travel in.

A device driver explains each connection with a :class:`StatusDetail` (shown as
the read-only ``isthmus:status_detail`` of the connection, docs/diagnosis.md):
the IKE and CHILD SA states and negotiated algorithms, and, when something is
wrong, a reason code from :data:`REASONS` with a message in words. The codes are
an API: alerts and scripts match on them, so they never change meaning; new ones
may be added. Messages may name proposals, identities, addresses and selectors,
never a pre-shared key.

Agents and the server both load this module: it imports only the standard library.
"""

from dataclasses import dataclass
from typing import NotRequired, TypedDict


@dataclass(frozen=True)
class Reason:
    """One reason code: what it means and what an operator should check."""

    code: str
    summary: str
    check: str
    failure: bool = True
    """False for a warning (the tunnel is up, but something is wrong) or a plain state."""


_REASONS = (
    Reason("ike_proposal_mismatch", "No IKE proposal was acceptable to both sides "
           "(NO_PROPOSAL_CHOSEN in IKE_SA_INIT).",
           "The IKE policy's encryption, integrity and PFS group against the peer's "
           "phase 1 settings; the message names both sides' proposals where known."),
    Reason("esp_proposal_mismatch", "IKE is up but no IPsec (ESP/AH) proposal was acceptable "
           "to both sides (NO_PROPOSAL_CHOSEN for the CHILD SA).",
           "The IPsec policy's encryption, integrity, PFS and transform protocol against "
           "the peer's phase 2 settings."),
    Reason("authentication_failed", "The pre-shared key or an identity did not match "
           "(AUTHENTICATION_FAILED).",
           "The PSK on both sides, and local_id/peer_id against the peer's own and expected "
           "identities (the message names the identities, never the key)."),
    Reason("traffic_selectors_unacceptable", "The peer refused the subnets to protect "
           "(TS_UNACCEPTABLE).",
           "The local and peer endpoint groups (or peer_cidrs) against the peer's "
           "left/right subnets: both sides must list the same pairs, mirrored."),
    Reason("peer_not_responding", "The peer never answered IKE_SA_INIT.",
           "That peer_address is right and reachable on UDP 500 and 4500 (firewalls, "
           "routes, the peer's daemon running)."),
    Reason("dead_peer", "The peer stopped answering an established IKE SA (dead peer "
           "detection or another request went unanswered).",
           "Whether the peer is up and reachable; the DPD interval and timeout."),
    Reason("retransmits_exhausted", "A request during IKE_AUTH or a CHILD SA exchange "
           "was never answered after every retransmit.",
           "Packet loss or fragmentation between the sites (large IKE_AUTH messages, "
           "UDP 4500 blocked after NAT detection)."),
    Reason("local_device_failed", "This side could not install the SAs or policies "
           "it negotiated.",
           "The agent host's kernel IPsec support (or kernel-libipsec), and the router's "
           "namespace; the agent's log and charon.log say more."),
    Reason("peer_device_failed", "The peer negotiated, then could not set up the CHILD SA "
           "on its side (it answered an error such as INTERNAL_ADDRESS_FAILURE or "
           "TEMPORARY_FAILURE).",
           "The peer's logs: its kernel IPsec support, its policies. (libreswan answers "
           "TS_UNACCEPTABLE when its kernel refuses the SA: see traffic_selectors_unacceptable.)"),
    Reason("peer_deleted", "The peer deleted the SA.",
           "The peer's logs: it may have been restarted, reconfigured or shut down."),
    Reason("configuration_rejected", "The connection's configuration was refused: by our "
           "IKE daemon when loading it, or by the peer with an error notify not listed here.",
           "The message names what was refused (the notify, or the daemon's words); the "
           "policies of the connection."),
    Reason("daemon_not_running", "The router's IKE daemon is not running; the agent "
           "restarts it.",
           "The agent's log, and the daemon's own log on the agent host."),
    Reason("admin_down", "The connection or its VPN service is administratively down "
           "(admin_state_up is false).", "Nothing, unless it should be up.",
           failure=False),
    Reason("negotiating", "The tunnel is being negotiated.",
           "Wait a few seconds; if it stays, the peer may not answer.", failure=False),
    Reason("one_way_traffic", "Traffic leaves through the tunnel but nothing has come back "
           "for a while, although the SAs exist.",
           "The peer's side: whether it drops our ESP (firewall), routes the replies "
           "elsewhere, or lost the SAs without telling us.", failure=False),
    Reason("simulated", "The status is simulated by the noop device driver: no tunnel is "
           "built.", "Nothing: configure a real device driver to build tunnels.",
           failure=False),
)
REASONS: dict[str, Reason] = {r.code: r for r in _REASONS}


class SAInfo(TypedDict, total=False):
    """An IKE or CHILD SA as negotiated (every key optional: a driver says what it knows)."""

    state: str
    """IKE: CREATED, CONNECTING, ESTABLISHED, REKEYING, DELETING...; CHILD: INSTALLED,
    REKEYING, ... (the daemon's own state names)."""
    version: int
    """IKE only: 1 or 2."""
    encryption: str
    integrity: str
    prf: str
    dh_group: str
    protocol: str
    """CHILD only: ESP or AH."""
    mode: str
    local_spi: str
    remote_spi: str
    established_at: str
    """ISO 8601 UTC."""
    rekey_at: str
    """ISO 8601 UTC: when the next rekey is due."""


class Failure(TypedDict):
    """The last thing that went wrong, and when."""

    reason: str
    message: str
    at: str


class StatusDetail(TypedDict, total=False):
    """What ``isthmus:status_detail`` of a connection shows (docs/diagnosis.md)."""

    reason: str | None
    """Why the status is what it is now: a code of :data:`REASONS`; None when all is well."""
    message: str | None
    ike: SAInfo | None
    child: SAInfo | None
    last_failure: Failure | None
    """Kept after the tunnel recovers, until the next failure replaces it."""
    warnings: list[Failure]
    """Things wrong while the tunnel is up (``one_way_traffic``)."""
    simulated: NotRequired[bool]


def detail(reason: str | None, message: str | None = None, **rest: object) -> StatusDetail:
    """A status detail with ``reason`` (a code of :data:`REASONS`) and its message
    (default: the reason's summary)."""
    if reason is not None and reason not in REASONS:
        raise ValueError(f"unknown reason code {reason!r}: add it to isthmus.diagnosis.REASONS")
    text = message if message is not None or reason is None else REASONS[reason].summary
    return StatusDetail(reason=reason, message=text, **rest)  # type: ignore[typeddict-item]


def from_text(text: str | None) -> StatusDetail | None:
    """The detail an agent older than structured details sent (a sentence, or None)."""
    return None if text is None else StatusDetail(reason=None, message=text)


def summary(value: StatusDetail | None) -> str | None:
    """One line for logs and the event history: ``code: message``."""
    if not value:
        return None
    reason, message = value.get("reason"), value.get("message")
    if reason and message:
        return f"{reason}: {message}"
    return reason or message
