"""The Peer Service API: advertise, bulk advertise (full sync), available registers."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from pydantic import BaseModel, ValidationError
from rest_framework.request import Request
from rest_framework.views import APIView

from peers.api.schemas import (
    REGISTER_ID_PARAMETER,
    AdvertiseAnswer,
    AdvertisementFields,
    AvailableRegisterList,
    BulkAdvertiseRequest,
    BulkAdvertiseResult,
    StoreStatus,
    TimeWindow,
    describe_validation_error,
)
from peers.gossip import trigger_round
from peers.store import BulkResult, MarksLost, MarksUnavailable, StaleFullSync, get_store
from sorcha_site import bounds
from sorcha_site.api import error_response, json_response, require_json_body
from sorcha_site.auth import IsServiceOrStaff
from sorcha_site.memory import gc_paused
from sorcha_site.schema import error

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)


class BadRequest(Exception):
    pass


def parse_body(request: Request, model: type[ModelT]) -> ModelT:
    require_json_body(request)
    try:
        return model.model_validate_json(request.body or b"")
    except ValidationError as exc:
        raise BadRequest(describe_validation_error(exc)) from exc


def check_register_id(register_id: str) -> None:
    # fullmatch: the path is percent-decoded, so `<32 hex>%0A` arrives with a final newline.
    if not bounds.is_register_id(register_id):
        raise BadRequest(f"registerId: {register_id[:64]!r} is not 32 lowercase hex characters")


def outcome_of(result: BulkResult) -> str:
    for outcome in ("added", "updated", "removed", "unchanged", "stale"):
        if getattr(result, outcome):
            return outcome
    return "unchanged"


class PeerAPIView(APIView):
    # Turns BadRequest into a 400 whose message names the field; nothing has been applied by then.
    # (A comment, not a docstring: drf-spectacular would show a docstring as every operation's description.)

    def handle_exception(self, exc: Exception) -> Any:
        if isinstance(exc, BadRequest):
            return error_response(str(exc), status=400)
        return super().handle_exception(exc)


class BulkAdvertiseView(PeerAPIView):
    # Writes: the Register Service (service token) or an operator; a plain user may only read.
    permission_classes = [IsServiceOrStaff]

    @extend_schema(
        request={"application/json": BulkAdvertiseRequest},
        responses={
            200: BulkAdvertiseResult,
            400: error(400, "Malformed body, or an item out of bounds; `detail` names the field. Nothing applied."),
            409: error(
                409,
                "`snapshotAt`: a full sync built from a snapshot older than the last one applied; or `total`: the "
                "marks of the sync's earlier requests fall short of it (lost). Nothing swept; send the sync again.",
            ),
            503: error(
                503,
                "`snapshotAt`: the store cannot reach Redis, where a full sync's marks are shared; listed items "
                "were refreshed, nothing was swept. Retry after `Retry-After` seconds.",
            ),
        },
        summary="Advertise many registers; with fullSync the list is the complete local public set",
        description=(
            "All or nothing: one bad item refuses the whole body, and each `registerId` may appear once. "
            "An item with `isPublic: false` removes. "
            "With `fullSync: true` local advertisements neither listed nor changed after `snapshotAt` are removed "
            "(unless the mass-removal guard holds them). Timestamps must lie between 2000-01-01 and this node's "
            "clock plus CLOCK_SKEW_MAX."
        ),
    )
    def post(self, request: Request) -> HttpResponse:
        # Validating and applying 10,000 items allocates objects by the hundred thousand; without
        # this, the cyclic collector walks the whole process heap many times (it doubles the time).
        with gc_paused():
            body = parse_body(request, BulkAdvertiseRequest)
            window = TimeWindow()
            try:
                snapshot_at = body.snapshot_micros(window)
                advertisements = body.to_inputs(window)
            except ValueError as exc:
                raise BadRequest(str(exc)) from exc
        try:
            result = get_store().apply_bulk(
                advertisements, full_sync=body.fullSync, snapshot_at=snapshot_at, total=body.total
            )
        except StaleFullSync as exc:
            logger.warning("event=full_sync_refused reason=stale detail=%r", str(exc))
            return error_response(f"snapshotAt: {exc}", status=409)
        except MarksLost as exc:
            logger.warning("event=full_sync_refused reason=marks_lost detail=%r", str(exc))
            return error_response(f"total: {exc}", status=409)
        except MarksUnavailable as exc:
            logger.warning("event=full_sync_deferred reason=marks_unavailable snapshot_at=%s", body.snapshotAt)
            response = error_response(f"snapshotAt: {exc}", status=503)
            response["Retry-After"] = str(exc.retry_after)
            return response
        if result.changed:
            trigger_round()
        return json_response(result.as_dict())


class AdvertiseView(PeerAPIView):
    permission_classes = [IsServiceOrStaff]

    @extend_schema(
        request={"application/json": AdvertisementFields},
        parameters=[REGISTER_ID_PARAMETER],
        responses={
            200: AdvertiseAnswer,
            400: error(400, "Malformed body or register id; `detail` names the field. Nothing applied."),
        },
        summary="Advertise one register (`isPublic: false` removes it)",
        description="The answer is the stored advertisement, or `{registerId, isPublic: false, outcome}` when none "
        "is held any more.",
    )
    def post(self, request: Request, register_id: str) -> HttpResponse:
        check_register_id(register_id)
        body = parse_body(request, AdvertisementFields)
        try:
            advertisement = body.to_input(register_id, TimeWindow())
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc
        result, entry = get_store().advertise(advertisement)
        if result.changed:
            trigger_round()
        if entry is None:
            return json_response({"registerId": register_id, "isPublic": False, "outcome": outcome_of(result)})
        return json_response({**entry.as_dict(), "outcome": outcome_of(result)})

    @extend_schema(
        parameters=[REGISTER_ID_PARAMETER],
        responses={204: None, 400: error(400, "`registerId` is not 32 lowercase hex characters.")},
        summary="Stop advertising one register (idempotent)",
    )
    def delete(self, request: Request, register_id: str) -> HttpResponse:
        check_register_id(register_id)
        if get_store().remove(register_id).changed:
            trigger_round()
        return HttpResponse(status=204)


class AvailableRegistersView(PeerAPIView):
    @extend_schema(
        responses={200: AvailableRegisterList}, summary="Local and remote advertisements grouped by register"
    )
    def get(self, request: Request) -> HttpResponse:
        return HttpResponse(get_store().available_json(), content_type="application/json")


class StoreStatusView(PeerAPIView):
    @extend_schema(responses={200: StoreStatus}, summary="Health of the advertisement store")
    def get(self, request: Request) -> HttpResponse:
        return json_response(get_store().status())
