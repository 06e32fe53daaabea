"""Gossip exchange (authenticated by signatures, not the service token), the peers list and operator actions."""

from __future__ import annotations

import logging
import math

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.views import APIView

from peers import gossip
from peers.models import Peer
from sorcha_site.api import error_response, json_response
from sorcha_site.auth import IsServiceOrStaff
from sorcha_site.metrics import record_gossip_exchange, record_gossip_refusal

logger = logging.getLogger(__name__)


class ExchangeView(APIView):
    # A node of another operator has no token: the Ed25519 signature is the authentication.
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=gossip.GossipMessage,
        responses={
            200: gossip.GossipMessage,
            400: OpenApiResponse(description="malformed message or sentAt out of bounds; the detail names the field"),
            403: OpenApiResponse(description="bad signature, id not derived from the key, banned or not admitted"),
            409: OpenApiResponse(description="replayed sequence number"),
            413: OpenApiResponse(description="body over the gossip size limit, or over GOSSIP_MAX_REMOTE_ADS"),
            429: OpenApiResponse(description="rate limit (per address or peer) or GOSSIP_MAX_PEERS; see Retry-After"),
        },
        summary="Push-pull gossip: the sender's signed set in, this node's signed set out",
    )
    def post(self, request: Request) -> HttpResponse:
        source = request.META.get("REMOTE_ADDR") or "unknown"
        try:
            gossip.accept_message(request.body, request.headers.get(gossip.SIGNATURE_HEADER, ""), source=source)
        except gossip.GossipRejected as exc:
            logger.warning(
                "event=gossip_refused status=%d reason=%s source=%s detail=%r",
                exc.status,
                exc.reason,
                source,
                exc.detail,
            )
            record_gossip_refusal(exc.reason)
            response = error_response(exc.detail, status=exc.status)
            if exc.retry_after is not None:
                response["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
            return response
        record_gossip_exchange("received_ok")
        reply = gossip.build_message()
        response = HttpResponse(reply.body, content_type="application/json")
        response[gossip.SIGNATURE_HEADER] = reply.signature
        return response


class PeerListView(APIView):
    @extend_schema(responses={200: OpenApiResponse(description="known peers with status and counts")})
    def get(self, request: Request) -> HttpResponse:
        return json_response([gossip.describe_peer(peer) for peer in Peer.objects.all()])


class PeerBanView(APIView):
    permission_classes = [IsServiceOrStaff]
    banned = True

    @extend_schema(request=None, responses={200: OpenApiResponse(description="the peer")})
    def post(self, request: Request, pk: int) -> HttpResponse:
        peer = get_object_or_404(Peer, pk=pk)
        return json_response(gossip.describe_peer(gossip.set_banned(peer, self.banned)))


class PeerUnbanView(PeerBanView):
    banned = False


class PeerApproveView(APIView):
    permission_classes = [IsServiceOrStaff]

    @extend_schema(request=None, responses={200: OpenApiResponse(description="the peer, approved")})
    def post(self, request: Request, pk: int) -> HttpResponse:
        """Admit the peer (allowlist mode) and keep its row from the peer cap's eviction."""
        peer = get_object_or_404(Peer, pk=pk)
        return json_response(gossip.describe_peer(gossip.set_approved(peer)))


class PeerForgetView(APIView):
    permission_classes = [IsServiceOrStaff]

    @extend_schema(request=None, responses={204: OpenApiResponse(description="row and advertisements dropped")})
    def post(self, request: Request, pk: int) -> HttpResponse:
        gossip.forget(get_object_or_404(Peer, pk=pk))
        return HttpResponse(status=204)


class GossipRoundView(APIView):
    permission_classes = [IsServiceOrStaff]

    @extend_schema(
        request=None,
        parameters=[OpenApiParameter("respectBackoff", bool, description="skip peers that are backed off")],
        responses={200: OpenApiResponse(description="peers contacted, ok, failed, skipped")},
    )
    def post(self, request: Request) -> HttpResponse:
        """Run a gossip round now with every non-banned peer (backed-off ones too, unless asked not to)."""
        respect_backoff = request.query_params.get("respectBackoff", "false").lower() in ("1", "true", "yes")
        return json_response(gossip.gossip_round(force=not respect_backoff))
