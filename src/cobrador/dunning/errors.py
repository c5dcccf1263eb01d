"""The business conditions of dunning's operator actions, each with its stable `type`."""

from cobrador.core.errors import Conflict


class AccountAlreadySuspended(Conflict):
    type = "account_already_suspended"


class AccountNotSuspended(Conflict):
    type = "account_not_suspended"
