from django.db import transaction
from django.shortcuts import get_object_or_404
from ninja import Router, Status

from cobrador.core.errors import errors
from cobrador.core.operations import register_path_id
from cobrador.core.pagination import paginate
from cobrador.core.params import Limit
from cobrador.gateways import services
from cobrador.gateways.errors import GatewayMethodTaken, SandboxGatewayReadOnly, SandboxNeedsTestMode
from cobrador.gateways.models import GatewayConfig
from cobrador.gateways.schemas import GATEWAYS_DESCRIPTION, GatewayCreate, GatewayOut, GatewayPage, GatewayUpdate

router = Router(tags=["gateways"])
register_path_id("gateway_id", lambda organization, value: GatewayConfig.objects.filter(
    organization=organization, public_id=value, deleted_at__isnull=True).exists())


def _gateway(request, gateway_id: str) -> GatewayConfig:
    return get_object_or_404(GatewayConfig, organization=request.auth, public_id=gateway_id, deleted_at__isnull=True)


@router.post("/gateways", response={201: GatewayOut, **errors(GatewayMethodTaken, SandboxNeedsTestMode)},
             summary="Configure a provider for payment methods",
             description=GATEWAYS_DESCRIPTION)
def create_gateway(request, payload: GatewayCreate):
    data = payload.model_dump(exclude_unset=True)
    with transaction.atomic():
        config = services.create_gateway(organization=request.auth, provider=data["provider"],
                                         methods=data["methods"], credentials=data.get("credentials", {}),
                                         options=data.get("options", {}))
    return Status(201, services.gateway_data(config))


@router.get("/gateways", response=GatewayPage, summary="List gateway configurations",
            description=GATEWAYS_DESCRIPTION)
def list_gateways(request, limit: Limit = 20, cursor: str | None = None):
    configs = GatewayConfig.objects.filter(organization=request.auth, deleted_at__isnull=True)
    return paginate(configs, cursor=cursor, limit=limit, serialize=services.gateway_data)


@router.get("/gateways/{gateway_id}", response=GatewayOut, summary="Retrieve a gateway configuration")
def get_gateway(request, gateway_id: str):
    return services.gateway_data(_gateway(request, gateway_id))


@router.patch("/gateways/{gateway_id}",
              response={200: GatewayOut, **errors(SandboxGatewayReadOnly, GatewayMethodTaken)},
              summary="Change a gateway configuration",
              description="Omitted fields stay. `credentials` are merged (the fields sent replace the stored "
                          "ones); `options` replace the stored options. The built-in sandbox is read-only.")
def update_gateway(request, gateway_id: str, payload: GatewayUpdate):
    with transaction.atomic():
        config = services.update_gateway(organization=request.auth, config=_gateway(request, gateway_id),
                                         changes=payload.model_dump(exclude_unset=True))
    return services.gateway_data(config)


@router.delete("/gateways/{gateway_id}", response={204: None, **errors(SandboxGatewayReadOnly)},
               summary="Delete a gateway configuration",
               description="It stops serving its methods at once; callbacks about its earlier payments are "
                           "still accepted.")
def delete_gateway(request, gateway_id: str):
    with transaction.atomic():
        services.delete_gateway(organization=request.auth, config=_gateway(request, gateway_id))
    return Status(204, None)
