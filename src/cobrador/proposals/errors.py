"""The proposal errors, each with a stable `type` clients can branch on (same JSON shape as every error)."""

from cobrador.core.errors import Conflict


class ProposalNotEditable(Conflict):
    type = "proposal_not_editable"


class ProposalNotSendable(Conflict):
    type = "proposal_not_sendable"


class ProposalExpired(Conflict):
    type = "proposal_expired"


class ProposalClosed(Conflict):
    """Accepted, declined or canceled: nothing more can happen to it."""
    type = "proposal_closed"


class ProposalNotOpen(Conflict):
    """A draft cannot be accepted or declined: it was never sent."""
    type = "proposal_not_open"
