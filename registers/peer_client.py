"""The Register Service's client of the Peer Service: the only way `registers` talks to `peers`.

The two services are deployed separately, so this is plain HTTP with the service token.
Failures come in two kinds, because callers treat them differently:

- `PeerServiceUnavailable` — connection refused, timeout, 5xx (or 429): try again later;
- `PeerServiceRejected` — any other 4xx: our request is wrong, retrying will not help.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import orjson
import requests
from django.conf import settings

logger = logging.getLogger(__name__)

# 429 means "later", not "never": it is retried like a 5xx.
_RETRYABLE_STATUSES = frozenset({429})
_BODY_LOG_LIMIT = 2_000


class PeerServiceError(Exception):
    """A request to the Peer Service did not succeed."""


class PeerServiceUnavailable(PeerServiceError):
    """The Peer Service could not answer now (connection error, timeout, 5xx): retryable."""


class FullSyncRefused(PeerServiceUnavailable):
    """409 to a full sync: a newer one was applied (or its earlier requests' marks were lost). A later
    full sync, with a newer snapshot, is accepted: retryable."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"full sync refused by the Peer Service as stale or incomplete, will retry: {detail}")


class PeerServiceRejected(PeerServiceError):
    """The Peer Service refused the request (4xx): permanent, not retried."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        self.status = status
        self.body = body
        super().__init__(f"{method} {path} was refused with HTTP {status}: {body[:300]}")


_session_lock = threading.Lock()
_session: requests.Session | None = None


def _shared_session() -> requests.Session:
    """One connection pool per process (created lazily, so after a Celery worker forks)."""
    global _session
    with _session_lock:
        if _session is None:
            _session = requests.Session()
        return _session


class PeerServiceClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        connect_timeout: float,
        read_timeout: float,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.session = session or _shared_session()
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

    @classmethod
    def from_settings(cls) -> PeerServiceClient:
        return cls(
            settings.PEER_SERVICE_URL,
            settings.SORCHA_SERVICE_TOKEN,
            settings.PEER_SERVICE_CONNECT_TIMEOUT,
            settings.PEER_SERVICE_READ_TIMEOUT,
        )

    def bulk_advertise(self, body: bytes) -> dict[str, Any]:
        """POST an already encoded bulk-advertise body; returns the Peer Service's counts."""
        return self._sync_request("/api/registers/bulk-advertise", body)

    def reconcile(self, body: bytes) -> dict[str, Any]:
        """POST an encoded page of a full sync by digest; returns the counts, `needed` and `complete`.

        A 404 or 405 (a Peer Service without digests) is PeerServiceRejected, for the caller to fall
        back on a plain full sync; it is logged as information, not as an error.
        """
        return self._sync_request("/api/registers/reconcile", body, quiet=(404, 405))

    def _sync_request(self, path: str, body: bytes, quiet: tuple[int, ...] = ()) -> dict[str, Any]:
        """A request of a full sync or of pushed changes.

        A 409 (a newer snapshot was applied) is worth retrying: a later full sync takes a newer
        snapshot, and the Peer Service voids a stored snapshot after one RECONCILE_INTERVAL, so
        a clock step on this host never stops reconciliation for good.
        """
        try:
            # A 409 is expected now and then, and retried: information, not an error.
            return self._json(self._request("POST", path, body, (*quiet, 409)))
        except PeerServiceRejected as exc:
            if exc.status == 409:
                raise FullSyncRefused(_detail(exc.body)) from exc
            raise

    def _request(
        self, method: str, path: str, body: bytes | None = None, quiet: tuple[int, ...] = ()
    ) -> requests.Response:
        """`quiet`: refusals the caller expects and handles (not logged as errors)."""
        url = f"{self.base_url}{path}"
        try:
            response = self.session.request(method, url, data=body, headers=self.headers, timeout=self.timeout)
        except requests.Timeout as exc:
            raise PeerServiceUnavailable(f"{method} {url} timed out ({_cause(exc)})") from exc
        except requests.ConnectionError as exc:
            raise PeerServiceUnavailable(f"{method} {url} could not connect ({_cause(exc)})") from exc
        if response.status_code >= 500 or response.status_code in _RETRYABLE_STATUSES:
            raise PeerServiceUnavailable(f"{method} {url} answered HTTP {response.status_code}")
        if response.status_code >= 400:
            text = response.text[:_BODY_LOG_LIMIT]
            logger.log(
                logging.INFO if response.status_code in quiet else logging.ERROR,
                "event=peer_request_rejected method=%s path=%s status=%d body=%r",
                method,
                path,
                response.status_code,
                text,
            )
            raise PeerServiceRejected(method, path, response.status_code, text)
        return response

    @staticmethod
    def _json(response: requests.Response) -> dict[str, Any]:
        try:
            payload = orjson.loads(response.content) if response.content else {}
        except orjson.JSONDecodeError as exc:
            # A 2xx that is not our API's JSON: a proxy or the wrong URL; retrying may reach the right thing.
            raise PeerServiceUnavailable(f"{response.url} answered HTTP {response.status_code} with non-JSON") from exc
        return payload if isinstance(payload, dict) else {}


def _detail(body: str) -> str:
    """The `detail` of the Peer Service's JSON error body, or the body itself."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:300]
    return str(payload.get("detail", body))[:300] if isinstance(payload, dict) else body[:300]


def _cause(exc: requests.RequestException) -> str:
    """The useful end of requests' nested message: `[Errno 111] Connection refused`, `read timeout=60`."""
    inner = exc.args[0] if exc.args else exc
    text = str(getattr(inner, "reason", inner))
    return text.rpartition("): ")[2] or text
