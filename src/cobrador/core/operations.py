"""What every `/v1` operation does the same way, applied once over the built API (`apply(api)` in urls.py):

* bad input is checked in a fixed order: the path ids first (an id that is not the caller's answers 404
  whatever else is wrong, so a body or query error never tells that a foreign id exists), then unknown or
  repeated query parameters (422 naming the parameter; ninja would silently ignore them), then the
  parameters and body themselves;
* each operation lists in OpenAPI the error responses it can give, with the error `type`s as an enum:
  the ones every operation shares are added here, the business errors by each route's `response=`
  (`errors(...)` from `cobrador.core.errors`).

Apps register how their path ids are looked up with `register_path_id` (core knows no domain model).
"""

from collections.abc import Callable
from typing import get_args, get_origin

from django.db.models import Model
from ninja.errors import HttpError, ValidationError

from cobrador.core.errors import ApiError, NotFound, ValidationFailed, error_schema, error_types_of

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

_path_id_lookups: dict[str, Callable[[object, str], bool]] = {}


def register_path_id(name: str, lookup: type[Model] | Callable[[object, str], bool]) -> None:
    """`lookup`: a model with `organization` and `public_id`, or `(organization, value) -> exists`."""
    if isinstance(lookup, type) and issubclass(lookup, Model):
        model = lookup
        _path_id_lookups[name] = lambda organization, value: model._default_manager.filter(  # noqa: SLF001 - Django's documented manager
            organization=organization, public_id=value).exists()
    else:
        _path_id_lookups[name] = lookup


def registered_path_ids() -> set[str]:
    return set(_path_id_lookups)


def _check_path_ids(request, path_params: dict) -> None:
    organization = getattr(request, "auth", None)
    if organization is None:
        return
    for name, value in path_params.items():
        lookup = _path_id_lookups.get(name)
        if lookup is not None and not lookup(organization, str(value)):
            raise NotFound("no such object")  # the very answer of a lookup in the route


def _takes_list(annotation) -> bool:
    return get_origin(annotation) is list or any(get_origin(arg) is list for arg in get_args(annotation))


def _query_names(operation) -> tuple[set[str], set[str]]:
    """The query parameters an operation declares, and those of them that take a list."""
    names, lists = set(), set()
    for model in operation.models:
        if model.__ninja_param_source__ != "query":
            continue
        for field_name, field in model.model_fields.items():
            name = field.alias or field_name
            names.add(name)
            if _takes_list(field.annotation):
                lists.add(name)
    return names, lists


def _check_query(request, names: set[str], lists: set[str]) -> None:
    for name in request.GET:
        if name not in names:
            raise ValidationFailed(f"{name}: unknown query parameter", field=name)
        if name not in lists and len(request.GET.getlist(name)) > 1:
            raise ValidationFailed(f"{name}: given more than once", field=name)


def _ordered_input_checks(operation) -> None:
    names, lists = _query_names(operation)
    get_values = operation._get_values  # noqa: SLF001 - ninja's step that validates path, query and body, after auth

    # A provider's signed callback (no API key) is stored raw whatever its URL carries.
    check_query = bool(operation.auth_callbacks)

    def get_values_in_order(request, path_params, temporal_response):
        try:
            if check_query:
                _check_query(request, names, lists)
            return get_values(request, path_params, temporal_response)
        except (ValidationError, HttpError, ApiError):
            _check_path_ids(request, path_params)
            raise

    operation._get_values = get_values_in_order  # noqa: SLF001 - wraps ninja's input step (above)


def _document_errors(operation, path: str) -> None:
    common: dict[int, set[str]] = {422: {"validation_error"}}
    if operation.auth_callbacks:
        common.setdefault(401, set()).add("unauthorized")
    if "{" in path:
        common.setdefault(404, set()).add("not_found")
    if WRITE_METHODS & set(operation.methods):
        common.setdefault(400, set()).update({"invalid_json", "invalid_request"})
        # The body checks of core/middleware.py, before any route runs.
        common[411] = {"length_required"}
        common[413] = {"request_too_large"}
        common[415] = {"unsupported_media_type"}
        if operation.auth_callbacks:  # the Idempotency-Key header (core/idempotency.py)
            common.setdefault(409, set()).add("idempotency_key_in_progress")
            common[422].add("idempotency_key_reused")
    for status, model in list(operation.response_models.items()):
        declared = error_types_of(model.model_fields["response"].annotation) if hasattr(model, "model_fields") \
            else None
        if declared is not None:
            common.setdefault(status, set()).update(declared)
    for status, types in common.items():
        operation.response_models[status] = operation._create_response_model(  # noqa: SLF001 - ninja's own schema wrapper
            error_schema(status, types))


def apply(api) -> None:
    """Call once, after every router is added and before `api.urls` is read."""
    for bound_router in api._get_bound_routers():  # noqa: SLF001 - ninja lists its routes nowhere public
        for path, path_view in bound_router.path_operations.items():
            for operation in path_view.operations:
                if not operation.include_in_schema:  # pages for people (unsubscribe), not the JSON API
                    continue
                _ordered_input_checks(operation)
                _document_errors(operation, bound_router.prefix + path)
