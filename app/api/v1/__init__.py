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
    insights,
    interactions,
    orders,
    pipelines,
    scoring_rules,
    segments,
    tiers,
    users,
    webhooks,
    workflows,
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
        workflows,
        workspace,
        api_keys,
        users,
        audit_log,
        insights,
    )
]
routers.append(insights.customer_router)
