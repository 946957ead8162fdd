"""The one error hierarchy: every failure a client can cause is an AppError with a status."""

from collections.abc import Iterable, Mapping, Sequence
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


def validation_message(error: Mapping[str, Any]) -> str:
    """A Pydantic error's message, as clients read it."""
    if error.get("type") == "extra_forbidden":
        return "Unknown field."
    return str(error.get("msg", "Invalid value.")).removeprefix("Value error, ")


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
        return cls(f"{_where(loc)}: {message}", [(loc, message)])

    @classmethod
    def from_errors(
        cls, errors: Iterable[Mapping[str, Any]], prefix: Sequence[str | int] = ()
    ) -> "ValidationFailed":
        """From Pydantic's error list, each location prefixed by `prefix`."""
        items = [((*prefix, *error["loc"]), validation_message(error)) for error in errors]
        first_loc, first_message = items[0] if items else ((), "Invalid request.")
        detail = f"{_where(first_loc)}: {first_message}" if first_loc else first_message
        return cls(detail, items)


def _where(loc: Sequence[str | int]) -> str:
    return ".".join(str(part) for part in loc)


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
