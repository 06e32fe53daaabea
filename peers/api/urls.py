from __future__ import annotations

from django.urls import re_path

from peers.api import history_views, peer_views, views

# Paths answer with and without a trailing slash (original Sorcha clients use both).
urlpatterns = [
    re_path(r"^registers/bulk-advertise/?$", views.BulkAdvertiseView.as_view(), name="bulk-advertise"),
    re_path(r"^registers/reconcile/?$", views.ReconcileView.as_view(), name="reconcile"),
    re_path(r"^registers/available/?$", views.AvailableRegistersView.as_view(), name="available-registers"),
    re_path(r"^registers/(?P<register_id>[^/]+)/advertise/?$", views.AdvertiseView.as_view(), name="advertise"),
    re_path(r"^store/status/?$", views.StoreStatusView.as_view(), name="store-status"),
    re_path(r"^store/pool-history/?$", history_views.PoolHistoryView.as_view(), name="pool-history"),
    re_path(r"^peers/?$", peer_views.PeerListView.as_view(), name="peer-list"),
    re_path(r"^peers/exchange/?$", peer_views.ExchangeView.as_view(), name="peer-exchange"),
    re_path(r"^peers/round/?$", peer_views.GossipRoundView.as_view(), name="peer-round"),
    re_path(r"^peers/(?P<pk>[0-9]+)/ban/?$", peer_views.PeerBanView.as_view(), name="peer-ban"),
    re_path(r"^peers/(?P<pk>[0-9]+)/unban/?$", peer_views.PeerUnbanView.as_view(), name="peer-unban"),
    re_path(r"^peers/(?P<pk>[0-9]+)/approve/?$", peer_views.PeerApproveView.as_view(), name="peer-approve"),
    re_path(r"^peers/(?P<pk>[0-9]+)/forget/?$", peer_views.PeerForgetView.as_view(), name="peer-forget"),
]
