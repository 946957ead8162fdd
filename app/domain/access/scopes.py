"""The permissions an API key can carry."""

from enum import StrEnum


class Scope(StrEnum):
    CUSTOMERS_READ = "customers:read"
    CUSTOMERS_WRITE = "customers:write"
    INTERACTIONS_READ = "interactions:read"
    INTERACTIONS_WRITE = "interactions:write"
    EVENTS_READ = "events:read"
    EVENTS_WRITE = "events:write"
    DEALS_READ = "deals:read"
    DEALS_WRITE = "deals:write"
    SEGMENTS_READ = "segments:read"
    SEGMENTS_WRITE = "segments:write"
    USERS_READ = "users:read"
    USERS_WRITE = "users:write"
    WEBHOOKS_MANAGE = "webhooks:manage"
    WORKFLOWS_MANAGE = "workflows:manage"
    INSIGHTS_READ = "insights:read"
    ADMIN = "admin"


def grants(held: frozenset[str], required: Scope) -> bool:
    """Whether scopes `held` allow `required`: admin allows everything, write allows read."""
    if Scope.ADMIN in held or required in held:
        return True
    resource, _, access = required.partition(":")
    return access == "read" and f"{resource}:write" in held
