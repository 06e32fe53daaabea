"""Gossip exchange (authenticated by signatures, not the service token), the peers list and operator actions."""

from __future__ import annotations

import logging
import math
import time

from django.db.models import Prefetch
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.views import APIView

from peers import history, peer_actions
from peers.admission import GossipRejected
from peers.api.answers import ExchangeConflict, GossipRoundOutcome, PeerDescription, PeerDescriptionList
from peers.api.peer_json import describe_peer
from peers.gossip import inbound, messages, rounds
from peers.models import Peer, PeerExchange
from sorcha_site.api import error_response, json_response, refuse_body_fields
from sorcha_site.auth import IsServiceOrStaff
from sorcha_site.malformed_ids import PEER_ID_MAX, check_peer_id
from sorcha_site.metrics import record_gossip_exchange, record_gossip_refusal
from sorcha_site.schema import error

logger = logging.getLogger(__name__)

PEER_ID_PARAMETER = OpenApiParameter(
    "id",
    {"type": "integer", "minimum": 1, "maximum": PEER_ID_MAX},
    OpenApiParameter.PATH,
    description="the peer's `id` in the list",
)


class ExchangeView(APIView):
    # A node of another operator has no token: the Ed25519 signature is the authentication.
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(
        request={"application/json": messages.GossipMessage},
        parameters=[
            OpenApiParameter(
                messages.SIGNATURE_HEADER,
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="Ed25519 signature (hex) of the exact request body, by the key in `publicKey`",
            ),
            OpenApiParameter(
                messages.DIGESTS_HEADER,
                str,
                OpenApiParameter.HEADER,
                enum=["1"],
                description="`1`: the sender understands digests, so the reply carries `advertisementsDigest` and "
                "`heldDigest` (and the digest alone when the request's `heldDigest` is this node's). Without it "
                "(and without `advertisementsDigest` in the body) the reply is the original message.",
            ),
            OpenApiParameter(
                messages.RELAY_HEADER,
                str,
                OpenApiParameter.HEADER,
                enum=["1"],
                description="`1`: the sender relays signed per-origin sets; the reply then carries `originsDigest` "
                "(this node does too), and later messages between the two carry `originsDigest`, `originVersions` "
                "and `records` instead of the sender's own list (ARCHITECTURE §4).",
            ),
            OpenApiParameter(
                messages.SIGNATURE_HEADER,
                str,
                OpenApiParameter.HEADER,
                required=True,
                response=[200],
                description="Ed25519 signature (hex) of the exact response body, by this node's key",
            ),
        ],
        responses={
            200: OpenApiResponse(messages.GossipMessage, description="this node's own signed message"),
            400: error(
                400,
                "Malformed message, `sentAt` out of bounds, or one from this node itself; `detail` names the field.",
            ),
            403: error(
                403, "Bad or missing signature, `peerId` not derived from `publicKey`, a banned or not admitted peer."
            ),
            409: OpenApiResponse(
                ExchangeConflict,
                description="`sequence` not newer than the last accepted from this peer (a replay); or, with "
                "`needSet: true`, a digest-only message whose `advertisementsDigest` is not that of the set this node "
                "holds for the sender (it never had it, lost it, or it expired): nothing applied, send the message "
                "again with `advertisements`.",
            ),
            413: error(
                413, "Body over GOSSIP_MAX_BODY_BYTES, or more advertisements than GOSSIP_MAX_REMOTE_ADS allows."
            ),
            429: error(429, "Over the rate limit (per address or per peer) or GOSSIP_MAX_PEERS; see `Retry-After`."),
        },
        summary="Push-pull gossip: the sender's signed set in, this node's signed set out",
        description="Authenticated by the Ed25519 signature, not by the service token: any node may call it. A "
        "message carries `advertisements`, `advertisementsDigest` or both (the digest must then be the list's); "
        "a digest alone refreshes the set this node holds for the sender when it has that digest (409 with "
        "`needSet: true` otherwise).",
    )
    def post(self, request: Request) -> HttpResponse:
        at, started = timezone.now(), time.monotonic()
        source = request.META.get("REMOTE_ADDR") or "unknown"
        try:
            accepted = inbound.accept_message(
                request.body, request.headers.get(messages.SIGNATURE_HEADER, ""), source=source
            )
        except GossipRejected as exc:
            need_set = exc.reason == messages.NEED_SET
            logger.log(
                logging.INFO if need_set else logging.WARNING,  # a digest this node cannot match is routine
                "event=gossip_refused status=%d reason=%s source=%s detail=%r",
                exc.status,
                exc.reason,
                source,
                exc.detail,
            )
            record_gossip_refusal(exc.reason)
            response = error_response(exc.detail, status=exc.status, **({"needSet": True} if need_set else {}))
            if exc.retry_after is not None:
                response["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
            return response
        record_gossip_exchange("received_ok")
        digest_aware = (
            request.headers.get(messages.DIGESTS_HEADER) == "1" or accepted.message.advertisementsDigest is not None
        )
        reply = inbound.build_reply(accepted, digest_aware, request.headers.get(messages.RELAY_HEADER) == "1")
        tally = history.ExchangeTally(
            bytes_sent=len(reply.body),
            bytes_received=len(request.body),
            advertisements=accepted.peer.advertisements_received,
            digest_only=accepted.message.advertisements is None,
        )
        history.record_exchange(accepted.peer, "inbound", "ok", at, time.monotonic() - started, tally)
        response = HttpResponse(reply.body, content_type="application/json")
        response[messages.SIGNATURE_HEADER] = reply.signature
        return response


class PeerListView(APIView):
    @extend_schema(responses={200: PeerDescriptionList}, summary="Peers this node knows, with status and counts")
    def get(self, request: Request) -> HttpResponse:
        # Each peer's last exchanges in one query (pruned to PEER_EXCHANGE_HISTORY a peer as they are recorded).
        peers = Peer.objects.prefetch_related(Prefetch("exchanges", queryset=PeerExchange.objects.order_by("id")))
        return json_response([describe_peer(peer) for peer in peers])


class PeerBanView(APIView):
    permission_classes = [IsServiceOrStaff]
    banned = True

    @extend_schema(
        request=None,
        parameters=[PEER_ID_PARAMETER],
        responses={200: OpenApiResponse(PeerDescription, description="the peer, as listed")},
        summary="Ban a peer: its advertisements are hidden at once and its exchanges refused",
    )
    def post(self, request: Request, pk: str) -> HttpResponse:
        refuse_body_fields(request)
        peer = get_object_or_404(Peer, pk=check_peer_id(pk))
        return json_response(describe_peer(peer_actions.set_banned(peer, self.banned)))


@extend_schema_view(post=extend_schema(summary="Unban a peer: its exchanges are accepted again"))
class PeerUnbanView(PeerBanView):
    banned = False


class PeerApproveView(APIView):
    permission_classes = [IsServiceOrStaff]

    @extend_schema(
        request=None,
        parameters=[PEER_ID_PARAMETER],
        responses={200: OpenApiResponse(PeerDescription, description="the peer, approved")},
        summary="Approve a peer: admitted in allowlist mode, and its row kept from the peer cap's eviction",
    )
    def post(self, request: Request, pk: str) -> HttpResponse:
        refuse_body_fields(request)
        peer = get_object_or_404(Peer, pk=check_peer_id(pk))
        return json_response(describe_peer(peer_actions.set_approved(peer)))


class PeerForgetView(APIView):
    permission_classes = [IsServiceOrStaff]

    @extend_schema(
        request=None,
        parameters=[PEER_ID_PARAMETER],
        responses={204: OpenApiResponse(description="row and advertisements dropped")},
        summary="Forget a peer: its row and advertisements are dropped (it may be admitted again)",
    )
    def post(self, request: Request, pk: str) -> HttpResponse:
        refuse_body_fields(request)
        peer_actions.forget(get_object_or_404(Peer, pk=check_peer_id(pk)))
        return HttpResponse(status=204)


class GossipRoundView(APIView):
    permission_classes = [IsServiceOrStaff]

    @extend_schema(
        request=None,
        parameters=[
            OpenApiParameter(
                "respectBackoff",
                bool,
                description="true: skip peers that are backed off (default false: contact them too)",
            )
        ],
        responses={200: GossipRoundOutcome},
        summary="Run a gossip round now with every non-banned peer",
    )
    def post(self, request: Request) -> HttpResponse:
        """Run a gossip round now with every non-banned peer (backed-off ones too, unless asked not to)."""
        refuse_body_fields(request)
        raw = request.query_params.getlist("respectBackoff") or ["false"]
        if len(raw) != 1 or raw[0] not in ("true", "false"):
            return error_response("respectBackoff: must be true or false, given once", status=400)
        return json_response(rounds.gossip_round(force=raw[0] == "false"))
