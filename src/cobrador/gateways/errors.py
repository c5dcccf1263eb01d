"""The business conditions of gateway configurations, each with its stable `type`."""

from cobrador.core.errors import Conflict, ValidationFailed


class SandboxGatewayReadOnly(Conflict):
    type = "sandbox_gateway_read_only"


class GatewayMethodTaken(Conflict):
    """Another active configuration already serves the method."""
    type = "gateway_method_taken"


class NoGatewayForMethod(Conflict):
    type = "no_gateway_for_method"


class SandboxNeedsTestMode(ValidationFailed):
    type = "sandbox_needs_test_mode"
