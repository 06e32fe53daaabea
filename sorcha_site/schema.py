"""The OpenAPI contract's shared parts (drf-spectacular): auth scheme, error bodies, naming and common errors.

Errors every operation of a kind can answer are added by one rule (`document_common_errors`)
rather than by hand on each view, so a new operation cannot forget them:

- 401 wherever credentials are needed; 403 on the writes that need the service token or staff;
- 400, 413 and 415 on every POST, PUT and PATCH (a body is JSON, and a field the operation does not
  know is refused, even where it takes no body); 413 on every write (the body limit is global);
- 400 wherever a query parameter is validated; 400 (a malformed id) and 404 (no such id) wherever the
  path carries an id.

Operation-specific answers (409, 503, ...) stay on the views' `@extend_schema`.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from drf_spectacular.contrib.pydantic import PydanticExtension
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiResponse
from pydantic import BaseModel, Field


class ServiceTokenScheme(OpenApiAuthenticationExtension):
    target_class = "sorcha_site.auth.ServiceTokenAuthentication"
    name = "serviceToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "SORCHA_SERVICE_TOKEN"}


class PydanticModelScheme(PydanticExtension):
    """The Peer API's pydantic models, in the document's OpenAPI 3.0 dialect.

    pydantic writes JSON Schema 2020-12 (`anyOf: [..., {"type": "null"}]`, `const`); OpenAPI 3.0 says
    `nullable` and `enum`. 3.0 rather than 3.1 because in 3.1 (JSON Schema 2020-12) `2.0` *is* an integer,
    while both APIs take integers as JSON integers only and answer 400 to `2.0`.
    """

    priority = 1

    def get_name(self, auto_schema: Any, direction: str) -> str:
        name = str(super().get_name(auto_schema, direction))
        # With COMPONENT_SPLIT_REQUEST, drf-spectacular appends "Request" to every request component:
        # `BulkAdvertiseRequest` would become `BulkAdvertiseRequestRequest`.
        if direction == "request" and name.endswith("Request"):
            return name.removesuffix("Request")
        return name

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = self.target.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
        for name, definition in schema.pop("$defs", {}).items():
            component = ResolvedComponent(
                name=name, type=ResolvedComponent.SCHEMA, object=name, schema=openapi_30(definition)
            )
            auto_schema.registry.register_on_missing(component)
        return openapi_30(schema)


def openapi_30(node: Any) -> Any:
    """A JSON Schema 2020-12 fragment rewritten with OpenAPI 3.0's `nullable` and `enum`."""
    if isinstance(node, list):
        return [openapi_30(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: openapi_30(value) for key, value in node.items()}
    if "const" in node:
        node["enum"] = [node.pop("const")]
    types = node.get("type")
    if isinstance(types, list) and "null" in types:
        others = [kind for kind in types if kind != "null"]
        node["type"] = others[0] if len(others) == 1 else others
        node["nullable"] = True
    for combinator in ("anyOf", "oneOf"):
        options = node.get(combinator)
        if not isinstance(options, list) or {"type": "null"} not in options:
            continue
        options = [option for option in options if option != {"type": "null"}]
        node["nullable"] = True
        if len(options) > 1:
            node[combinator] = options
        elif "$ref" in options[0]:
            del node[combinator]
            node["allOf"] = options  # 3.0 ignores a $ref's siblings, so `nullable` needs the allOf
        else:
            del node[combinator]
            node = {**options[0], **node}
    return node


# Operations are grouped by the service that answers them; the document lists the groups in this order.
SERVICE_TAGS = [
    {
        "name": "Register Service",
        "description": "Registers (the ground truth), and the full sync that pushes the public ones to the Peer "
        "Service: run it now, its state, its history.",
    },
    {
        "name": "Peer Service",
        "description": "The advertisement pool: one register, many, a full sync (in full or by digest), the "
        "available registers, the store.",
    },
    {
        "name": "Gossip",
        "description": "The signed exchange between nodes (open to any node), and the operator's view of the "
        "peers and actions on them.",
    },
    {"name": "Node", "description": "The node as a whole: Prometheus metrics."},
]
# By the module of the view: a new view is tagged by where it lives, without a decorator to forget.
_TAG_BY_MODULE = (
    ("peers.api.peer_views", "Gossip"),
    ("peers.", "Peer Service"),
    ("registers.", "Register Service"),
)


def service_tag(module: str) -> str:
    return next((tag for prefix, tag in _TAG_BY_MODULE if module.startswith(prefix)), "Node")


class ServiceTaggedSchema(AutoSchema):
    def get_tags(self) -> list[str]:
        return [service_tag(type(self.view).__module__)]


class Error(BaseModel):
    """Every error of the API: `detail` is one human line naming the field or parameter at fault."""

    detail: str
    errors: dict[str, Any] | None = Field(default=None, description="DRF's per-field messages, where there are several")


ERROR_DESCRIPTIONS = {
    400: "Bad input (a body field, a query parameter, or a malformed id in the path); `detail` names the field "
    "or parameter at fault, and nothing was changed.",
    401: "No credentials, or a wrong bearer token.",
    403: "Credentials without the right to this action (it needs the service token or a staff user).",
    404: "Nothing at this path (no such id).",
    413: "Request body over the node's size limit (SORCHA_MAX_BODY_BYTES).",
    415: "Request body that is not `application/json`.",
}


def error(status: int, description: str | None = None) -> OpenApiResponse:
    return OpenApiResponse(Error, description=description or ERROR_DESCRIPTIONS[status])


# --- postprocessing hooks -----------------------------------------------------------------------

_PATH_PARAMETER = re.compile(r"\{([a-z0-9_]+)\}")
_WRITES = {"post", "put", "patch", "delete"}
_BODY_WRITES = {"post", "put", "patch"}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def camel_case_path_parameters(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """`{register_id}` is `{registerId}`: the API's names are camelCase, whatever the URLconf's kwargs."""
    paths: dict[str, Any] = {}
    for path, operations in result.get("paths", {}).items():
        paths[_PATH_PARAMETER.sub(lambda match: "{" + camel_case(match.group(1)) + "}", path)] = operations
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path":
                    parameter["name"] = camel_case(parameter["name"])
    result["paths"] = paths
    return result


# The Register API's paginator takes `limit` from 1 to SORCHA_LIST_LIMIT_MAX and `offset` from 0 (400 otherwise).
LIST_LIMIT_MAX_DEFAULT = 1_000
OFFSET_MAX = 2**53


def bound_pagination_parameters(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    limit_max = int(getattr(settings, "SORCHA_LIST_LIMIT_MAX", LIST_LIMIT_MAX_DEFAULT))
    bounds = {"limit": (1, limit_max), "offset": (0, OFFSET_MAX)}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and parameter.get("name") in bounds:
                    minimum, maximum = bounds[parameter["name"]]
                    parameter["schema"] = {"type": "integer", "minimum": minimum, "maximum": maximum}
    return result


def _add_error(operation: dict[str, Any], status: int) -> None:
    responses = operation.setdefault("responses", {})
    if str(status) not in responses:
        responses[str(status)] = {
            "description": ERROR_DESCRIPTIONS[status],
            "content": {"application/json": {"schema": _ERROR_REF}},
        }


def name_components_uniquely(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """A component is shown under its own name: pydantic titles both `GossipMessage` and
    `GossipMessageRequest` "GossipMessage", and every property by its name capitalised ("Sourceupdatedat")."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        for property_schema in component.get("properties", {}).values():
            _drop_titles(property_schema)
        if "title" in component:
            component["title"] = name
    result["tags"] = SERVICE_TAGS
    return result


def _drop_titles(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _drop_titles(item)
    elif isinstance(node, dict):
        node.pop("title", None)
        for key, value in node.items():
            if key == "properties":
                for property_schema in value.values():
                    _drop_titles(property_schema)
            else:
                _drop_titles(value)


# Where an answer names what another operation takes: (path, method, status) -> {link: (path, method, {parameter:
# expression})}. Clients (and Schemathesis' stateful phase) follow them; the rest are inferred from the schema.
_PEER_ACTIONS = ("ban", "unban", "approve", "forget")
LINKS: dict[tuple[str, str, str], dict[str, tuple[str, str, dict[str, str]]]] = {
    ("/api/peers/", "get", "200"): {
        f"{action.capitalize()}FirstPeer": (f"/api/peers/{{id}}/{action}/", "post", {"id": "$response.body#/0/id"})
        for action in _PEER_ACTIONS
    },
    **{
        (f"/api/peers/{{id}}/{action}/", "post", "200"): {
            f"{other.capitalize()}ThePeer": (f"/api/peers/{{id}}/{other}/", "post", {"id": "$request.path.id"})
            for other in _PEER_ACTIONS
            if other != action
        }
        for action in ("ban", "unban", "approve")
    },
}


def link_operations(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    paths = result.get("paths", {})
    for (path, method, status), links in LINKS.items():
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            continue
        for name, (target_path, target_method, parameters) in links.items():
            target = paths.get(target_path, {}).get(target_method)
            if target is not None:
                response.setdefault("links", {})[name] = {
                    "operationId": target["operationId"],
                    "parameters": parameters,
                }
    return result


_BLANK = {"type": "string", "maxLength": 0}


def blank_or_pattern_as_any_of(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular writes a blank-allowing text field with a pattern as `oneOf: [pattern, blank]`: an
    empty string matches both, so `oneOf` would call it invalid. Either will do: `anyOf`."""
    for component in result.get("components", {}).get("schemas", {}).values():
        for property_schema in component.get("properties", {}).values():
            options = property_schema.get("oneOf")
            if isinstance(options, list) and _BLANK in options:
                property_schema["anyOf"] = property_schema.pop("oneOf")
    return result


def refuse_unknown_request_fields(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Every request body is closed (`additionalProperties: false`): both APIs answer 400 to a field
    they do not know. The pydantic models say so already; the DRF serializers' components get it here."""
    components = result.get("components", {}).get("schemas", {})
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                ref = media.get("schema", {}).get("$ref", "")
                component = components.get(ref.rsplit("/", 1)[-1]) if ref else media.get("schema")
                if isinstance(component, dict) and component.get("type") == "object":
                    component.setdefault("additionalProperties", False)
    return result


def document_common_errors(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("Error", openapi_30(Error.model_json_schema()))
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            parameters = operation.get("parameters", [])
            authenticated = any(requirement for requirement in operation.get("security", [{}]))
            if authenticated:
                _add_error(operation, 401)
                if method in _WRITES:
                    _add_error(operation, 403)
            if "requestBody" in operation or method in _BODY_WRITES:
                for status in (400, 415):
                    _add_error(operation, status)
            if method in _WRITES:
                _add_error(operation, 413)
            if any(parameter.get("in") == "query" for parameter in parameters):
                _add_error(operation, 400)
            if any(parameter.get("in") == "path" for parameter in parameters):
                _add_error(operation, 400)
                _add_error(operation, 404)
    return result
