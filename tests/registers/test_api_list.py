from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.registers.factories import make_register

pytestmark = pytest.mark.django_db


def test_listing_answers_a_paginated_envelope(api_client: APIClient) -> None:
    # given
    make_register(name="only-one")

    # when
    response = api_client.get("/api/registers/")

    # then
    assert response.status_code == 200
    assert set(response.json()) == {"count", "next", "previous", "results"}
    assert response.json()["count"] == 1
    assert [register["name"] for register in response.json()["results"]] == ["only-one"]


def test_listing_puts_the_newest_register_first(api_client: APIClient) -> None:
    # given
    make_register(name="older")
    make_register(name="newer")

    # when
    response = api_client.get("/api/registers/")

    # then
    assert [register["name"] for register in response.json()["results"]] == ["newer", "older"]


def test_limit_and_offset_page_through_every_register_exactly_once(api_client: APIClient) -> None:
    # given
    created = {make_register().id for _ in range(5)}

    # when
    pages = [api_client.get("/api/registers/", {"limit": 2, "offset": offset}).json() for offset in (0, 2, 4)]

    # then
    seen = [register["id"] for page in pages for register in page["results"]]
    assert sorted(seen) == sorted(created)
    assert [len(page["results"]) for page in pages] == [2, 2, 1]
    assert pages[0]["count"] == 5
    assert pages[0]["next"] is not None
    assert pages[2]["next"] is None


def test_the_advertise_true_filter_lists_only_public_registers(api_client: APIClient) -> None:
    # given
    public = make_register(advertise=True)
    make_register(advertise=False)

    # when
    response = api_client.get("/api/registers/", {"advertise": "true"})

    # then
    assert [register["id"] for register in response.json()["results"]] == [public.id]


def test_the_advertise_false_filter_lists_only_private_registers(api_client: APIClient) -> None:
    # given
    make_register(advertise=True)
    private = make_register(advertise=False)

    # when
    response = api_client.get("/api/registers/", {"advertise": "false"})

    # then
    assert [register["id"] for register in response.json()["results"]] == [private.id]


def test_an_advertise_filter_that_is_not_a_boolean_is_400_naming_advertise(api_client: APIClient) -> None:
    # when
    response = api_client.get("/api/registers/", {"advertise": "maybe"})

    # then
    assert response.status_code == 400
    assert "advertise" in response.json()["errors"]
    assert response.json()["detail"].startswith("advertise:")


def test_search_matches_a_case_insensitive_part_of_the_name(api_client: APIClient) -> None:
    # given
    wanted = make_register(name="Payments Ledger")
    make_register(name="inventory")

    # when
    response = api_client.get("/api/registers/", {"search": "ledg"})

    # then
    assert [register["id"] for register in response.json()["results"]] == [wanted.id]


def test_search_and_advertise_filters_combine(api_client: APIClient) -> None:
    # given
    wanted = make_register(name="ledger-public", advertise=True)
    make_register(name="ledger-private", advertise=False)
    make_register(name="other-public", advertise=True)

    # when
    response = api_client.get("/api/registers/", {"search": "ledger", "advertise": "true"})

    # then
    assert [register["id"] for register in response.json()["results"]] == [wanted.id]


def test_an_empty_search_lists_every_register(api_client: APIClient) -> None:
    # given
    make_register()
    make_register()

    # when
    response = api_client.get("/api/registers/", {"search": ""})

    # then
    assert response.json()["count"] == 2
