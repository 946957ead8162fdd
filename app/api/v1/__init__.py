"""Version 1 of the HTTP contract: one router module per resource."""

from fastapi import APIRouter

from app.api.v1 import (
    api_keys,
    audit_log,
    companies,
    customers,
    deals,
    events,
    fields,
    imports,
    interactions,
    orders,
    pipelines,
    scoring_rules,
    segments,
    tiers,
    users,
    webhooks,
    workspace,
)

routers: list[APIRouter] = [
    module.router
    for module in (
        customers,
        events,
        orders,
        interactions,
        deals,
        pipelines,
        segments,
        tiers,
        scoring_rules,
        companies,
        fields,
        imports,
        webhooks,
        workspace,
        api_keys,
        users,
        audit_log,
    )
]
