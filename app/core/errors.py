"""The one error hierarchy: every failure a client can cause is an AppError with a status."""

from collections.abc import Sequence
from typing import Any, ClassVar

PROBLEM_TYPE_PREFIX = "urn:kokyaku:problem:"


class AppError(Exception):
    """A failure the client can act on; rendered as RFC 9457 problem+json by the API layer."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions

    @property
    def type(self) -> str:
        return PROBLEM_TYPE_PREFIX + self.slug

    def headers(self) -> dict[str, str]:
        return {}


class Unauthorized(AppError):
    status = 401
    slug = "unauthorized"
    title = "Authentication required"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="kokyaku"'}


class Forbidden(AppError):
    status = 403
    slug = "forbidden"
    title = "Missing scope"


class NotFound(AppError):
    status = 404
    slug = "not-found"
    title = "Not found"

    def __init__(self, resource: str, resource_id: object, **extensions: Any) -> None:
        super().__init__(f"No {resource} with id {resource_id}.", **extensions)


class Conflict(AppError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class PreconditionFailed(AppError):
    status = 412
    slug = "precondition-failed"
    title = "Precondition failed"


class PayloadTooLarge(AppError):
    status = 413
    slug = "payload-too-large"
    title = "Request body too large"


class UnsupportedMediaType(AppError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class ValidationFailed(AppError):
    status = 422
    slug = "validation-failed"
    title = "Validation failed"

    def __init__(self, detail: str, errors: Sequence[tuple[Sequence[str | int], str]]) -> None:
        super().__init__(
            detail, errors=[{"loc": list(loc), "message": message} for loc, message in errors]
        )

    @classmethod
    def at(cls, loc: Sequence[str | int], message: str) -> "ValidationFailed":
        return cls(message, [(loc, message)])


class RateLimited(AppError):
    status = 429
    slug = "rate-limited"
    title = "Too many requests"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Rate limit exceeded; retry in {retry_after} s.")
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class ServiceUnavailable(AppError):
    status = 503
    slug = "service-unavailable"
    title = "Service unavailable"
