from django.db import transaction
from ninja import Router

from cobrador.organizations import services
from cobrador.organizations.models import DunningConfig
from cobrador.organizations.schemas import DunningConfigOut, DunningConfigPatch

router = Router(tags=["organization settings"])


@router.get("/organizations/settings/dunning", response=DunningConfigOut, summary="Get the dunning policy")
def get_dunning_config(request):
    return services.dunning_config_data(DunningConfig.objects.get(organization=request.auth))


@router.patch("/organizations/settings/dunning", response=DunningConfigOut, summary="Change the dunning policy")
def patch_dunning_config(request, payload: DunningConfigPatch):
    with transaction.atomic():
        config = services.update_dunning_config(organization=request.auth,
                                                changes=payload.model_dump(exclude_unset=True))
    return services.dunning_config_data(config)
