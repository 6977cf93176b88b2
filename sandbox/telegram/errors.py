"""Telegram's error envelope, raised from anywhere inside a Bot API method."""

from http import HTTPStatus
from typing import Any

BLOCKED = "Forbidden: bot was blocked by the user"


class ApiError(Exception):
    """An answer Telegram would give instead of a result; the endpoint turns it into JSON."""

    def __init__(self, status: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(reason: str) -> ApiError:
    return ApiError(HTTPStatus.BAD_REQUEST, f"Bad Request: {reason}")


def too_many_requests(retry_after: int) -> ApiError:
    return ApiError(
        HTTPStatus.TOO_MANY_REQUESTS,
        f"Too Many Requests: retry after {retry_after}",
        retry_after=retry_after,
    )


def entity_too_large() -> ApiError:
    return ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Request Entity Too Large")


DEFAULT_DESCRIPTIONS: dict[int, str] = {
    HTTPStatus.BAD_REQUEST: "Bad Request",
    HTTPStatus.UNAUTHORIZED: "Unauthorized",
    HTTPStatus.FORBIDDEN: BLOCKED,
    HTTPStatus.NOT_FOUND: "Not Found",
    HTTPStatus.CONFLICT: "Conflict: terminated by other getUpdates request",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "Request Entity Too Large",
}


def error_for_status(status: int, retry_after: int | None) -> ApiError:
    """The answer a fault injects when the test gave only a status code."""
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        return too_many_requests(retry_after or 1)
    description = DEFAULT_DESCRIPTIONS.get(status) or HTTPStatus(status).phrase
    return ApiError(status, description, retry_after=retry_after)
