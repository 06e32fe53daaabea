"""What the served OpenAPI document says, point by point (the fuzzer checks the API against it)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.contract.served import served_schema

pytestmark = pytest.mark.django_db

WRITES = {"post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return served_schema()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, operation) for path, item in document["paths"].items() for method, operation in item.items()]


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node or ("allOf" in node and len(node["allOf"]) == 1):
        ref = node["$ref"] if "$ref" in node else node["allOf"][0]["$ref"]
        node = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return node


def response_schema(document: dict[str, Any], path: str, method: str, status: str) -> dict[str, Any]:
    content = document["paths"][path][method]["responses"][status]["content"]
    return resolve(document, content["application/json"]["schema"])


def test_available_registers_are_documented_as_an_array(document: dict[str, Any]) -> None:
    schema = response_schema(document, "/api/registers/available/", "get", "200")

    assert schema["type"] == "array"
    assert resolve(document, schema["items"])["properties"]["registerId"]["pattern"] == "^[0-9a-f]{32}$"


@pytest.mark.parametrize("field", ["nextRetryAt", "lastAttemptAt", "lastSuccessAt", "status", "reason"])
def test_sync_state_times_and_status_are_nullable(document: dict[str, Any], field: str) -> None:
    schema = response_schema(document, "/api/registers/sync-state/", "get", "200")

    assert schema["properties"][field]["nullable"] is True


def test_the_advertise_answer_is_the_stored_advertisement_or_the_removal(document: dict[str, Any]) -> None:
    schema = response_schema(document, "/api/registers/{registerId}/advertise/", "post", "200")

    options = [resolve(document, option) for option in schema["oneOf"]]
    assert [resolve(document, option["properties"]["isPublic"])["enum"] for option in options] == [[True], [False]]
    assert set(options[1]["required"]) == {"registerId", "isPublic", "outcome"}


def test_request_bodies_are_json_only(document: dict[str, Any]) -> None:
    bodies = {
        (path, method): list(operation["requestBody"]["content"])
        for path, method, operation in operations(document)
        if "requestBody" in operation
    }

    assert {content for types in bodies.values() for content in types} == {"application/json"}
    assert ("/api/registers/bulk-advertise/", "post") in bodies
    assert ("/api/registers/{registerId}/advertise/", "post") in bodies


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/store/status/", "get"),
        ("/api/peers/", "get"),
        ("/api/peers/{id}/ban/", "post"),
        ("/api/peers/{id}/unban/", "post"),
        ("/api/peers/round/", "post"),
        ("/api/registers/resync/", "post"),
        ("/api/peers/exchange/", "post"),
    ],
)
def test_operator_and_gossip_answers_have_response_schemas(document: dict[str, Any], path: str, method: str) -> None:
    success = next(status for status in document["paths"][path][method]["responses"] if status.startswith("2"))

    assert response_schema(document, path, method, success).get("type") in ("object", "array")


def test_every_operation_documents_its_errors_as_json(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        responses = operation["responses"]
        secured = any(requirement for requirement in operation.get("security", [{}]))
        parameters = {parameter["in"] for parameter in operation.get("parameters", [])}
        expected = set()
        expected |= {"401"} if secured else set()
        expected |= {"403", "413"} if method in WRITES and secured else set()
        expected |= {"400", "413", "415"} if "requestBody" in operation else set()
        expected |= {"400"} if "query" in parameters else set()
        expected |= {"400", "404"} if "path" in parameters else set()
        assert expected <= set(responses), (method, path, expected - set(responses))
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                assert resolve(document, response["content"]["application/json"]["schema"])["required"] == ["detail"]


def test_no_component_is_named_request_request(document: dict[str, Any]) -> None:
    assert not [name for name in document["components"]["schemas"] if name.endswith("RequestRequest")]
    assert "BulkAdvertiseRequest" in document["components"]["schemas"]


def test_the_register_id_path_parameter_has_its_pattern(document: dict[str, Any]) -> None:
    for method in ("post", "delete"):
        (parameter,) = document["paths"]["/api/registers/{registerId}/advertise/"][method]["parameters"]
        assert (parameter["name"], parameter["in"]) == ("registerId", "path")
        assert parameter["schema"] == {"type": "string", "pattern": "^[0-9a-f]{32}$"}


def test_query_parameters_have_types_and_bounds(document: dict[str, Any]) -> None:
    listing = {
        parameter["name"]: parameter["schema"]
        for parameter in document["paths"]["/api/registers/"]["get"]["parameters"]
    }
    (round_parameter,) = document["paths"]["/api/peers/round/"]["post"]["parameters"]

    assert listing["limit"] == {"type": "integer", "minimum": 1, "maximum": 1000}
    assert listing["offset"] == {"type": "integer", "minimum": 0, "maximum": 2**53}
    assert listing["advertise"] == {"type": "boolean"}
    assert listing["search"] == {"type": "string"}
    assert (round_parameter["name"], round_parameter["schema"]) == ("respectBackoff", {"type": "boolean"})


def view_classes() -> list[type]:
    found: list[type] = []

    def walk(patterns: list[URLPattern | URLResolver], prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif hasattr(pattern.callback, "cls"):
                found.append(pattern.callback.cls)

    walk(get_resolver().url_patterns, "")
    return found


def test_no_class_docstring_shows_as_a_description(document: dict[str, Any]) -> None:
    # Class docstrings are notes for developers; an operation's description is written for callers.
    notes = {
        inspect.cleandoc(base.__doc__)
        for view in view_classes()
        for base in view.__mro__
        if base.__doc__ and base.__module__.startswith(("peers", "registers", "sorcha_site"))
    }
    descriptions = {operation.get("description", "") for _, _, operation in operations(document)}

    assert notes
    assert not descriptions & notes


def objects_in(document: dict[str, Any], node: Any, seen: set[str]) -> list[dict[str, Any]]:
    """Every object schema reachable from `node` (through $ref, items, properties and combinators)."""
    if isinstance(node, list):
        return [found for item in node for found in objects_in(document, item, seen)]
    if not isinstance(node, dict):
        return []
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        if name in seen:
            return []
        seen.add(name)
        return objects_in(document, document["components"]["schemas"][name], seen)
    found = [node] if node.get("type") == "object" or "properties" in node else []
    for key in ("items", "allOf", "anyOf", "oneOf"):
        found += objects_in(document, node.get(key), seen)
    for value in node.get("properties", {}).values():
        found += objects_in(document, value, seen)
    return found


def test_every_request_body_refuses_unknown_fields(document: dict[str, Any]) -> None:
    checked = 0
    for path, method, operation in operations(document):
        if "requestBody" not in operation:
            continue
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        for node in objects_in(document, schema, set()):
            checked += 1
            assert node.get("additionalProperties") is False, (method, path, node.get("title"), node)
    assert checked >= 8


def test_every_write_that_may_carry_a_body_documents_400_and_415(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        if method in ("post", "put", "patch"):
            assert {"400", "415"} <= set(operation["responses"]), (method, path)


SERVICE_TAGS = {"Register Service", "Peer Service", "Gossip", "Node"}


@pytest.mark.parametrize(
    ("path", "method", "tag"),
    [
        ("/api/registers/", "post", "Register Service"),
        ("/api/registers/{id}/", "get", "Register Service"),
        ("/api/registers/resync/", "post", "Register Service"),
        ("/api/registers/sync-state/", "get", "Register Service"),
        ("/api/registers/bulk-advertise/", "post", "Peer Service"),
        ("/api/registers/{registerId}/advertise/", "post", "Peer Service"),
        ("/api/registers/available/", "get", "Peer Service"),
        ("/api/store/status/", "get", "Peer Service"),
        ("/api/peers/exchange/", "post", "Gossip"),
        ("/api/peers/", "get", "Gossip"),
        ("/api/peers/{id}/ban/", "post", "Gossip"),
        ("/metrics/", "get", "Node"),
    ],
)
def test_operations_are_tagged_by_service(document: dict[str, Any], path: str, method: str, tag: str) -> None:
    assert document["paths"][path][method]["tags"] == [tag]


def test_every_operation_has_one_service_tag_and_every_tag_is_described(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        assert len(operation["tags"]) == 1 and operation["tags"][0] in SERVICE_TAGS, (method, path, operation["tags"])
    described = {tag["name"]: tag.get("description") for tag in document["tags"]}
    assert set(described) == SERVICE_TAGS
    assert all(described.values())


def test_every_schema_is_shown_under_its_own_name(document: dict[str, Any]) -> None:
    # Swagger UI shows a component by its title: two components titled "GossipMessage" looked like one.
    components = document["components"]["schemas"]
    shown = [component.get("title", name) for name, component in components.items()]
    assert len(shown) == len(set(shown)), sorted(shown)
    assert {name: component.get("title", name) for name, component in components.items()} == {
        name: name for name in components
    }


def request_date_times(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for path, method, operation in operations(document):
        if "requestBody" not in operation:
            continue
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        for node in objects_in(document, schema, set()):
            for name, prop in node.get("properties", {}).items():
                if prop.get("format") == "date-time":
                    found.append((f"{method} {path} {name}", prop))
    return found


def test_every_client_timestamp_states_its_bounds(document: dict[str, Any]) -> None:
    moments = request_date_times(document)

    assert len(moments) >= 4
    for where, prop in moments:
        assert prop["x-latest"] == "now + CLOCK_SKEW_MAX", where
        assert prop["x-earliest"] in ("2000-01-01T00:00:00Z", "now - ADVERTISEMENT_TTL"), where


def test_the_rules_between_items_are_stated(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    digest, bulk = schemas["DigestRequest"]["properties"], schemas["BulkAdvertiseRequest"]["properties"]

    assert digest["registerIds"]["uniqueItems"] is True
    assert digest["sourceUpdatedAt"]["x-same-length-as"] == "registerIds"
    assert digest["sourceUpdatedAt"]["items"]["x-latest"] == "now + CLOCK_SKEW_MAX"
    assert bulk["advertisements"]["x-unique-items-by"] == "registerId"


def test_register_text_fields_state_their_rules(document: dict[str, Any]) -> None:
    register = document["components"]["schemas"]["RegisterRequest"]["properties"]

    assert register["name"]["pattern"] == "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
    # Blank or text without NUL: an empty string matches both options, so `anyOf`, not `oneOf`.
    assert [option.get("pattern") for option in register["description"]["anyOf"]] == ["^[^\\u0000]*$", None]


def test_the_peer_list_links_to_the_peer_actions(document: dict[str, Any]) -> None:
    links = document["paths"]["/api/peers/"]["get"]["responses"]["200"]["links"]

    assert {link["operationId"] for link in links.values()} == {
        "api_peers_ban_create",
        "api_peers_unban_create",
        "api_peers_approve_create",
        "api_peers_forget_create",
    }
    assert {str(link["parameters"]) for link in links.values()} == {"{'id': '$response.body#/0/id'}"}
