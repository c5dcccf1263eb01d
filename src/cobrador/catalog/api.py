from django.db import transaction
from django.shortcuts import get_object_or_404
from ninja import Router, Status

from cobrador.catalog import services
from cobrador.catalog.errors import CouponCodeTaken, ImmutableField
from cobrador.catalog.models import Coupon, Plan
from cobrador.catalog.schemas import (
    PLAN_DESCRIPTION,
    CouponCreate,
    CouponOut,
    CouponPage,
    CouponUpdate,
    PlanCreate,
    PlanOut,
    PlanPage,
    PlanUpdate,
)
from cobrador.core import clock
from cobrador.core.errors import errors
from cobrador.core.operations import register_path_id
from cobrador.core.pagination import paginate
from cobrador.core.params import Limit

router = Router(tags=["catalog"])
register_path_id("plan_id", Plan)
register_path_id("coupon_id", Coupon)


def _plan(request, plan_id: str) -> Plan:
    return get_object_or_404(Plan, organization=request.auth, public_id=plan_id)


def _coupon(request, coupon_id: str) -> Coupon:
    return get_object_or_404(Coupon.objects.prefetch_related("plans"), organization=request.auth,
                             public_id=coupon_id)


@router.post("/plans", response={201: PlanOut}, summary="Create a plan", description=PLAN_DESCRIPTION)
def create_plan(request, payload: PlanCreate):
    with transaction.atomic():
        plan = services.create_plan(organization=request.auth, **payload.model_dump())
    return Status(201, services.plan_data(plan))


@router.get("/plans", response=PlanPage, summary="List plans")
def list_plans(request, active: bool | None = None, limit: Limit = 20, cursor: str | None = None):
    plans = Plan.objects.filter(organization=request.auth)
    if active is not None:
        plans = plans.filter(active=active)
    return paginate(plans, cursor=cursor, limit=limit, serialize=services.plan_data)


@router.get("/plans/{plan_id}", response=PlanOut, summary="Retrieve a plan")
def get_plan(request, plan_id: str):
    return services.plan_data(_plan(request, plan_id))


@router.patch("/plans/{plan_id}", response={200: PlanOut, **errors(ImmutableField)},
              summary="Update a plan's name, active flag or trial days",
              description=PLAN_DESCRIPTION)
def update_plan(request, plan_id: str, payload: PlanUpdate):
    with transaction.atomic():
        plan = services.update_plan(plan=_plan(request, plan_id), changes=payload.model_dump(exclude_unset=True))
    return services.plan_data(plan)


@router.post("/coupons", response={201: CouponOut, **errors(CouponCodeTaken)}, summary="Create a coupon")
def create_coupon(request, payload: CouponCreate):
    with transaction.atomic():
        coupon = services.create_coupon(organization=request.auth, **payload.model_dump())
    return Status(201, services.coupon_data(_coupon(request, coupon.public_id)))


@router.get("/coupons", response=CouponPage, summary="List coupons")
def list_coupons(request, active: bool | None = None, code: str | None = None, limit: Limit = 20,
                 cursor: str | None = None):
    coupons = Coupon.objects.filter(organization=request.auth).prefetch_related("plans")
    if active is not None:
        coupons = coupons.filter(active=active)
    if code:
        coupons = coupons.filter(code=code)
    as_of = clock.now()
    return paginate(coupons, cursor=cursor, limit=limit,
                    serialize=lambda coupon: services.coupon_data(coupon, as_of=as_of))


@router.get("/coupons/{coupon_id}", response=CouponOut, summary="Retrieve a coupon")
def get_coupon(request, coupon_id: str):
    return services.coupon_data(_coupon(request, coupon_id))


@router.patch("/coupons/{coupon_id}", response={200: CouponOut, **errors(ImmutableField)},
              summary="Rename, activate or deactivate a coupon",
              description="Only `name` and `active` change; what a coupon gives is fixed at creation.")
def update_coupon(request, coupon_id: str, payload: CouponUpdate):
    with transaction.atomic():
        coupon = services.update_coupon(coupon=_coupon(request, coupon_id),
                                        changes=payload.model_dump(exclude_unset=True))
    return services.coupon_data(coupon)
