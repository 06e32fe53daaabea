"""Gossip exchange (authenticated by signatures, not the service token) and the peers list."""

from __future__ import annotations

import logging

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.views import APIView

from peers import gossip
from peers.api.schemas import GossipRoundOutcome, PeerDescription, PeerDescriptionList
from peers.models import Peer
from sorcha_site.api import error_response, json_response
from sorcha_site.metrics import record_gossip_exchange
from sorcha_site.schema import error

logger = logging.getLogger(__name__)


class ExchangeView(APIView):
    # A node of another operator has no token: the Ed25519 signature is the authentication.
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(
        request={"application/json": gossip.GossipMessage},
        parameters=[
            OpenApiParameter(
                gossip.SIGNATURE_HEADER,
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="Ed25519 signature (hex) of the exact request body, by the key in `publicKey`",
            ),
            OpenApiParameter(
                gossip.SIGNATURE_HEADER,
                str,
                OpenApiParameter.HEADER,
                required=True,
                response=[200],
                description="Ed25519 signature (hex) of the exact response body, by this node's key",
            ),
        ],
        responses={
            200: OpenApiResponse(gossip.GossipMessage, description="this node's own signed message"),
            400: error(400, "Malformed message, or one from this node itself; `detail` names the field."),
            403: error(403, "Bad or missing signature, `peerId` not derived from `publicKey`, or a banned peer."),
            409: error(409, "`sequence` not newer than the last accepted from this peer (a replay)."),
            413: error(413, "Body over the gossip size limit (GOSSIP_MAX_BODY_BYTES)."),
        },
        summary="Push-pull gossip: the sender's signed set in, this node's signed set out",
        description="Authenticated by the Ed25519 signature, not by the service token: any node may call it.",
    )
    def post(self, request: Request) -> HttpResponse:
        body = request.body
        try:
            gossip.accept_message(body, request.headers.get(gossip.SIGNATURE_HEADER, ""))
        except gossip.GossipRejected as exc:
            logger.warning("event=gossip_refused status=%d detail=%r", exc.status, exc.detail)
            record_gossip_exchange(f"received_refused_{exc.status}")
            return error_response(exc.detail, status=exc.status)
        record_gossip_exchange("received_ok")
        reply = gossip.build_message()
        response = HttpResponse(reply.body, content_type="application/json")
        response[gossip.SIGNATURE_HEADER] = reply.signature
        return response


class PeerListView(APIView):
    @extend_schema(responses={200: PeerDescriptionList}, summary="Peers this node knows, with status and counts")
    def get(self, request: Request) -> HttpResponse:
        return json_response([gossip.describe_peer(peer) for peer in Peer.objects.all()])


class PeerBanView(APIView):
    banned = True

    @extend_schema(
        request=None,
        parameters=[
            OpenApiParameter(
                "id",
                {"type": "integer", "minimum": 1},
                OpenApiParameter.PATH,
                description="the peer's `id` in the list",
            )
        ],
        responses={200: OpenApiResponse(PeerDescription, description="the peer, as listed")},
        summary="Ban a peer: its advertisements are hidden at once and its exchanges refused",
    )
    def post(self, request: Request, pk: int) -> HttpResponse:
        peer = get_object_or_404(Peer, pk=pk)
        return json_response(gossip.describe_peer(gossip.set_banned(peer, self.banned)))


@extend_schema_view(post=extend_schema(summary="Unban a peer: its exchanges are accepted again"))
class PeerUnbanView(PeerBanView):
    banned = False


class GossipRoundView(APIView):
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
        respect_backoff = request.query_params.get("respectBackoff", "false").lower() in ("1", "true", "yes")
        return json_response(gossip.gossip_round(force=not respect_backoff))
