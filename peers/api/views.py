"""The Peer Service API: advertise, bulk advertise (full sync), available registers."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from pydantic import BaseModel, ValidationError
from rest_framework.request import Request
from rest_framework.views import APIView

from peers.api.answers import REGISTER_ID_PARAMETER, AdvertiseAnswer, AvailableRegisterList, StoreStatus
from peers.api.schemas import (
    AdvertisementFields,
    BulkAdvertiseRequest,
    BulkAdvertiseResult,
    DigestRequest,
    DigestResult,
    TimeWindow,
    describe_validation_error,
)
from peers.gossip.rounds import trigger_round
from peers.store import BulkResult, MarksLost, MarksUnavailable, StaleFullSync, format_micros, get_store
from sorcha_site import bounds, malformed_ids
from sorcha_site.api import error_response, json_response, require_json_body
from sorcha_site.auth import IsServiceOrStaff
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
        raise BadRequest(malformed_ids.describe("registerId", register_id, malformed_ids.REGISTER_ID))


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


# The refusals of a request of a full sync (bulk-advertise, reconcile), as the schema documents them.
FULL_SYNC_ANSWERS = {
    400: error(400, "Malformed body, or an item out of bounds; `detail` names the field. Nothing applied."),
    409: error(
        409,
        "`snapshotAt`: a full sync built from a snapshot older than the last one applied; or `total`: the marks "
        "of the sync's earlier requests or pages fall short of it (lost). Nothing swept; send the sync again.",
    ),
    503: error(
        503,
        "`snapshotAt`: the store cannot reach Redis, where a full sync's marks are shared; nothing was swept "
        "(the items listed were refreshed). Retry after `Retry-After` seconds.",
    ),
}


class BulkAdvertiseView(PeerAPIView):
    # Writes: the Register Service (service token) or an operator; a plain user may only read.
    permission_classes = [IsServiceOrStaff]

    @extend_schema(
        request={"application/json": BulkAdvertiseRequest},
        responses={
            200: BulkAdvertiseResult,
            **FULL_SYNC_ANSWERS,
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
        body = parse_body(request, BulkAdvertiseRequest)
        window = TimeWindow()
        try:
            snapshot_at = body.snapshot_micros(window)
            advertisements = body.to_inputs(window)
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc
        if snapshot_at is None and body.fullSync:
            snapshot_at = arrival_snapshot(window)
        try:
            result = get_store().apply_bulk(
                advertisements, full_sync=body.fullSync, snapshot_at=snapshot_at, total=body.total
            )
        except FULL_SYNC_REFUSALS as exc:
            return full_sync_refused(exc)
        if result.changed:
            trigger_round()
        return json_response(result.as_dict())


FULL_SYNC_REFUSALS = (StaleFullSync, MarksLost, MarksUnavailable)


def arrival_snapshot(window: TimeWindow) -> int:
    """The snapshot of a full sync that carries none (the original Sorcha client's): its arrival, less the
    margin this node's own full syncs take before reading their database (FULL_SYNC_SNAPSHOT_MARGIN).
    Stamped with the arrival itself, it would be newer than the snapshot of a sync this node starts right
    after it, which would be refused as stale; and a register changed just before it would be swept."""
    return window.now - int(settings.FULL_SYNC_SNAPSHOT_MARGIN * 1_000_000)


def full_sync_refused(exc: Exception) -> HttpResponse:
    """409 for a stale snapshot or lost marks, 503 with Retry-After while marks cannot be shared."""
    if isinstance(exc, StaleFullSync):
        logger.warning("event=full_sync_refused reason=stale detail=%r", str(exc))
        return error_response(f"snapshotAt: {exc}", status=409)
    if isinstance(exc, MarksLost):
        logger.warning("event=full_sync_refused reason=marks_lost detail=%r", str(exc))
        return error_response(f"total: {exc}", status=409)
    assert isinstance(exc, MarksUnavailable)
    logger.warning("event=full_sync_deferred reason=marks_unavailable snapshot_at=%s", format_micros(exc.snapshot_at))
    response = error_response(f"snapshotAt: {exc}", status=503)
    response["Retry-After"] = str(exc.retry_after)
    return response


class ReconcileView(PeerAPIView):
    permission_classes = [IsServiceOrStaff]

    @extend_schema(
        request={"application/json": DigestRequest},
        responses={
            200: DigestResult,
            **FULL_SYNC_ANSWERS,
        },
        summary="A full sync by digest: one page of (registerId, sourceUpdatedAt) of the complete local public set",
        description=(
            "A full sync where little changed costs a comparison, not a rewrite. Registers held here with the very "
            "same `sourceUpdatedAt` have their TTL refreshed and count as `unchanged`; the others come back in "
            "`needed`, for the source to send in full through bulk-advertise with the same `snapshotAt` (its last "
            "request with `fullSync` and `total`). Every listed register is marked for the sweep. A `final` page "
            "that needs nothing completes the full sync (`complete`): local advertisements neither listed nor "
            "changed after `snapshotAt` are removed, under the same mass-removal guard and staleness check as "
            "bulk-advertise. Each `registerId` may appear once."
        ),
    )
    def post(self, request: Request) -> HttpResponse:
        body = parse_body(request, DigestRequest)
        window = TimeWindow()
        try:
            snapshot_at = body.snapshot_micros(window)
            digest = body.pairs(window)
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc
        try:
            answer = get_store().reconcile(digest, snapshot_at, final=body.final, total=body.total)
        except FULL_SYNC_REFUSALS as exc:
            return full_sync_refused(exc)
        if answer.result.changed:
            trigger_round()
        return json_response({**answer.result.as_dict(), "needed": answer.needed, "complete": answer.complete})


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
