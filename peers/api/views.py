"""The Peer Service API: advertise, bulk advertise (full sync), available registers."""

from __future__ import annotations

import logging
import re
from typing import Any, TypeVar

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from pydantic import BaseModel, ValidationError
from rest_framework.request import Request
from rest_framework.views import APIView

from peers.api.schemas import (
    REGISTER_ID_PARAMETER,
    REGISTER_ID_PATTERN,
    AdvertiseAnswer,
    AdvertisementFields,
    AvailableRegisterList,
    BulkAdvertiseRequest,
    BulkAdvertiseResult,
    StoreStatus,
    describe_validation_error,
)
from peers.gossip import trigger_round
from peers.store import BulkResult, StaleFullSync, get_store
from sorcha_site.api import error_response, json_response
from sorcha_site.memory import gc_paused
from sorcha_site.schema import error

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)
_register_id = re.compile(REGISTER_ID_PATTERN)


class BadRequest(Exception):
    pass


def parse_body(request: Request, model: type[ModelT]) -> ModelT:
    try:
        return model.model_validate_json(request.body or b"")
    except ValidationError as exc:
        raise BadRequest(describe_validation_error(exc)) from exc


def check_register_id(register_id: str) -> None:
    if not _register_id.match(register_id):
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
    @extend_schema(
        request={"application/json": BulkAdvertiseRequest},
        responses={
            200: BulkAdvertiseResult,
            400: error(400, "Malformed body, or an item out of bounds; `detail` names the field. Nothing applied."),
            409: error(409, "`snapshotAt`: a full sync built from a snapshot older than the last one applied."),
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
            advertisements = [item.to_input(item.registerId) for item in body.advertisements]
        try:
            result = get_store().apply_bulk(advertisements, full_sync=body.fullSync, snapshot_at=body.snapshot_micros())
        except StaleFullSync as exc:
            logger.warning("event=full_sync_refused reason=stale detail=%r", str(exc))
            return error_response(f"snapshotAt: {exc}", status=409)
        if result.changed:
            trigger_round()
        return json_response(result.as_dict())


class AdvertiseView(PeerAPIView):
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
        result, entry = get_store().advertise(body.to_input(register_id))
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
