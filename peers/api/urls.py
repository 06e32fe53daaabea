from __future__ import annotations

from django.urls import re_path

from peers.api import views

# Paths answer with and without a trailing slash (original Sorcha clients use both).
urlpatterns = [
    re_path(r"^registers/bulk-advertise/?$", views.BulkAdvertiseView.as_view(), name="bulk-advertise"),
    re_path(r"^registers/available/?$", views.AvailableRegistersView.as_view(), name="available-registers"),
    re_path(r"^registers/(?P<register_id>[^/]+)/advertise/?$", views.AdvertiseView.as_view(), name="advertise"),
    re_path(r"^store/status/?$", views.StoreStatusView.as_view(), name="store-status"),
]
