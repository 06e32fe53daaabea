"""The API's configuration: Django REST framework and drf-spectacular (the schema and its docs UI).

Fixed, not read from the environment; `sorcha_site/settings.py` exposes both as its settings.
"""

from __future__ import annotations

from typing import Any

REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "sorcha_site.auth.ServiceTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Request bodies are JSON only: a form or multipart body gets 415 (a form would read `isFullReplica`
    # as false and a missing boolean as false, where JSON means something else).
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "sorcha_site.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 100,
    # drf-spectacular's AutoSchema, tagging each operation by the service that answers it.
    "DEFAULT_SCHEMA_CLASS": "sorcha_site.schema.ServiceTaggedSchema",
    "EXCEPTION_HANDLER": "sorcha_site.api.exception_handler",
}
SPECTACULAR_SETTINGS: dict[str, Any] = {
    "TITLE": "Sorcha node API",
    "DESCRIPTION": (
        "Register Service and Peer Service of a Sorcha node: registers, advertisements, resync, gossip. "
        'Bodies are JSON only; every error answers `{"detail": ...}` naming the field at fault.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # 3.0, not 3.1: in 3.1 (JSON Schema 2020-12) `2.0` is an integer, and the API takes JSON integers only.
    # The pydantic models' `null` unions are rewritten as `nullable` (sorcha_site.schema.PydanticModelScheme).
    "OAS_VERSION": "3.0.3",
    # Request bodies are documented as JSON only (the API answers 415 to anything else).
    # `isPublic` is `true` on a held advertisement and `false` on a removal's answer: two one-value enums.
    "ENUM_NAME_OVERRIDES": {"AdvertisedEnum": [(True, True)], "RemovedEnum": [(False, False)]},
    "PARSER_WHITELIST": ["rest_framework.parsers.JSONParser"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "sorcha_site.schema.camel_case_path_parameters",
        "sorcha_site.schema.bound_pagination_parameters",
        "sorcha_site.schema.refuse_unknown_request_fields",
        "sorcha_site.schema.name_components_uniquely",
        "sorcha_site.schema.blank_or_pattern_as_any_of",
        "sorcha_site.schema.link_operations",
        "sorcha_site.schema.document_common_errors",
    ],
    # The docs UI is served from this node's static files (drf-spectacular-sidecar), never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
