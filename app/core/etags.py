"""Entity tags for optimistic concurrency: a resource's ETag is its version, strongly compared."""

import re

from app.core.errors import PreconditionFailed

_ENTITY_TAG = re.compile(r'\s*(W/)?"([^"]*)"\s*')


def etag_for(version: int) -> str:
    return f'"{version}"'


def parse_if_match(header: str | None) -> frozenset[int] | None:
    """The versions an If-Match header accepts; None when any version is acceptable.

    If-Match uses the strong comparison (RFC 9110 §13.1.1), so weak tags and tags that are not
    one of our versions match nothing and the write answers 412.
    """
    if header is None or header.strip() == "*":
        return None
    versions: set[int] = set()
    for part in header.split(","):
        match = _ENTITY_TAG.fullmatch(part)
        if match and not match.group(1) and match.group(2).isdigit():
            versions.add(int(match.group(2)))
    return frozenset(versions)


def ensure_version(current: int, accepted: frozenset[int] | None) -> None:
    if accepted is not None and current not in accepted:
        raise PreconditionFailed(
            f"The resource is at version {current}; re-read it and apply your change again.",
            current_etag=etag_for(current),
        )
