"""What each action does, through the other domains' services so that their usual events and
rules apply; and what it would do (a dry-run), writing nothing."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.context import Context
from app.core.errors import AppError, NotFound
from app.domain.customer import schemas as customer_schemas
from app.domain.customer.service import CustomerService
from app.domain.interaction.schemas import InteractionCreate, InteractionType
from app.domain.interaction.service import InteractionService
from app.domain.pipeline.schemas import DealUpdate
from app.domain.pipeline.service import DealService
from app.domain.segment.service import SegmentService
from app.domain.webhook.service import WebhookService
from app.domain.workflow.entities import Workflow
from app.domain.workflow.schemas import parse_duration
from app.domain.workflow.templates import render

CUSTOMER = "customer"
DEAL = "deal"
SCHEDULED_EVENT = "workflow.scheduled"
_CUSTOMER_ACTIONS = frozenset(
    {"add_tag", "remove_tag", "set_lifecycle_stage", "add_to_segment", "remove_from_segment"}
)


class ActionFailed(AppError):
    status = 422
    slug = "workflow-action-failed"
    title = "Workflow action failed"


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What an action may use: the workflow, the run, its subject and triggering event."""

    workflow_id: UUID
    workflow_name: str
    run_id: UUID | None  # none in a dry-run
    subject_type: str
    subject_id: UUID
    event: dict[str, Any] | None


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class ActionRunner:
    def __init__(self, session: AsyncSession, context: Context) -> None:
        self.session = session
        self.context = context
        self.customers = CustomerService(session, context)
        self.deals = DealService(session, context)
        self.interactions = InteractionService(session, context)
        self.segments = SegmentService(session, context)
        # Endpoints were checked when saved; the dispatcher checks them again on delivery.
        self.webhooks = WebhookService(session, context, allow_private=True)

    # What the run is about

    async def customer_id(self, facts: RunFacts) -> UUID:
        if facts.subject_type == CUSTOMER:
            return facts.subject_id
        deal = await self.deals.get(facts.subject_id)
        if deal.customer_id is None:
            raise ActionFailed("The deal has no customer to act on.")
        return deal.customer_id

    async def values(self, facts: RunFacts) -> dict[str, Any]:
        """The values a template may name."""
        values: dict[str, Any] = {
            "workflow": {"id": str(facts.workflow_id), "name": facts.workflow_name},
            "run": {"id": str(facts.run_id) if facts.run_id else None},
        }
        if facts.event is not None:
            values["event"] = facts.event
        if facts.subject_type == DEAL:
            deal = await self.deals.view(facts.subject_id)
            values["deal"] = deal.model_dump(mode="json")
            customer_id = deal.customer_id
        else:
            customer_id = facts.subject_id
        if customer_id is not None:
            with_customer = await self.customers.get(customer_id)
            values["customer"] = customer_schemas.Customer.snapshot(with_customer)
        return values

    def _event_payload(self, facts: RunFacts, values: dict[str, Any]) -> dict[str, Any]:
        if facts.event is not None:
            return facts.event
        # A scheduled run has no event: it sends one saying so, with the customer.
        return {
            "id": str(facts.run_id) if facts.run_id else None,
            "type": SCHEDULED_EVENT,
            "created_at": _iso(utcnow()),
            "workspace_id": str(self.context.workspace_id),
            "data": {"workflow": values["workflow"], "customer": values.get("customer")},
        }

    # Planning (dry-run) and performing

    async def plan(self, action: dict[str, Any], facts: RunFacts, now: datetime) -> dict[str, Any]:
        """The action's parameters as a run would use them at `now`; reads only."""
        kind = action["type"]
        planned = {name: value for name, value in action.items() if name != "type"}
        if kind == "send_webhook":
            await self.webhooks.get(UUID(action["endpoint_id"]))
            values = await self.values(facts)
            template = action.get("template")
            planned["payload"] = (
                render(template, values)
                if template is not None
                else self._event_payload(facts, values)
            )
            planned.pop("template", None)
        elif kind in _CUSTOMER_ACTIONS:
            planned["customer_id"] = str(await self.customer_id(facts))
        elif kind == "set_field":
            planned[f"{facts.subject_type}_id"] = str(facts.subject_id)
        elif kind == "assign_owner":
            planned[f"{facts.subject_type}_id"] = str(facts.subject_id)
            planned["user_id"] = str(await self._next_owner(facts, action, advance=False))
            planned.pop("round_robin", None)
        elif kind in ("create_task", "create_interaction"):
            planned["customer_id"] = str(await self.customer_id(facts))
            if facts.subject_type == DEAL:
                planned["deal_id"] = str(facts.subject_id)
            if action.get("due_in"):
                planned["due_at"] = _iso(now + parse_duration(action["due_in"]))
        elif kind == "move_deal_stage":
            planned["deal_id"] = str(facts.subject_id)
        elif kind == "wait":
            planned["resume_at"] = _iso(now + parse_duration(action["duration"]))
        return planned

    async def perform(self, action: dict[str, Any], facts: RunFacts) -> dict[str, Any]:
        """Does the action (not `wait`, which the engine handles); returns what it did."""
        kind = action["type"]
        if kind == "send_webhook":
            values = await self.values(facts)
            template = action.get("template")
            payload = (
                render(template, values)
                if template is not None
                else self._event_payload(facts, values)
            )
            event_type = facts.event["type"] if facts.event else SCHEDULED_EVENT
            delivery = await self.webhooks.send(UUID(action["endpoint_id"]), event_type, payload)
            return {"delivery_id": str(delivery.id)}
        if kind in ("add_tag", "remove_tag"):
            customer = await self.customers.get(await self.customer_id(facts))
            tags = list(customer.tags)
            if kind == "add_tag" and action["tag"] not in tags:
                tags.append(action["tag"])
            elif kind == "remove_tag" and action["tag"] in tags:
                tags.remove(action["tag"])
            changed = tags != customer.tags
            if changed:
                await self._update_customer(customer.id, tags=tags)
            return {"customer_id": str(customer.id), "changed": changed}
        if kind == "set_lifecycle_stage":
            customer_id = await self.customer_id(facts)
            await self._update_customer(customer_id, lifecycle_stage=action["stage"])
            return {"customer_id": str(customer_id)}
        if kind == "set_field":
            return await self._update_subject(facts, attributes={action["key"]: action["value"]})
        if kind == "assign_owner":
            owner = await self._next_owner(facts, action, advance=True)
            return {**await self._update_subject(facts, owner_id=owner), "user_id": str(owner)}
        if kind in ("create_task", "create_interaction"):
            return await self._create_interaction(action, facts)
        if kind in ("add_to_segment", "remove_from_segment"):
            customer_id = await self.customer_id(facts)
            members_changed, _ = await self.segments.change_members(
                UUID(action["segment_id"]), [customer_id], adding=kind == "add_to_segment"
            )
            return {"customer_id": str(customer_id), "changed": members_changed > 0}
        if kind == "move_deal_stage":
            await self.deals.update(
                facts.subject_id,
                DealUpdate(stage_id=UUID(action["stage_id"])),
                expected_versions=None,
            )
            return {"deal_id": str(facts.subject_id), "stage_id": action["stage_id"]}
        raise ActionFailed(f"Unknown action type '{kind}'.")

    async def _update_customer(self, customer_id: UUID, **fields: Any) -> None:
        await self.customers.update(
            customer_id,
            customer_schemas.CustomerUpdate.model_validate(fields),
            expected_versions=None,
        )

    async def _update_subject(self, facts: RunFacts, **fields: Any) -> dict[str, Any]:
        if facts.subject_type == DEAL:
            await self.deals.update(
                facts.subject_id, DealUpdate.model_validate(fields), expected_versions=None
            )
        else:
            await self._update_customer(facts.subject_id, **fields)
        return {f"{facts.subject_type}_id": str(facts.subject_id)}

    async def _create_interaction(self, action: dict[str, Any], facts: RunFacts) -> dict[str, Any]:
        task = action["type"] == "create_task"
        fields: dict[str, Any] = {
            "type": InteractionType.TASK if task else InteractionType.NOTE,
            "customer_id": await self.customer_id(facts),
            "deal_id": facts.subject_id if facts.subject_type == DEAL else None,
            "subject": action.get("title") if task else action.get("subject"),
            "body": action.get("body"),
        }
        if task:
            fields["assignee_id"] = action.get("assignee_id")
            if action.get("due_in"):
                fields["due_at"] = utcnow() + parse_duration(action["due_in"])
        interaction = await self.interactions.create(
            InteractionCreate.model_validate({k: v for k, v in fields.items() if v is not None})
        )
        return {"interaction_id": str(interaction.id)}

    async def _next_owner(self, facts: RunFacts, action: dict[str, Any], *, advance: bool) -> UUID:
        """The fixed user, or the next in the rotation (moved on only when `advance`)."""
        if action.get("user_id"):
            return UUID(action["user_id"])
        users = [UUID(user) for user in action["round_robin"]]
        workflow = (Workflow.workspace_id == self.context.workspace_id) & (
            Workflow.id == facts.workflow_id
        )
        if advance:
            turn = (
                await self.session.execute(
                    update(Workflow)
                    .where(workflow)
                    .values(assignments=Workflow.assignments + 1, updated_at=Workflow.updated_at)
                    .returning(Workflow.assignments)
                    .execution_options(synchronize_session=False)
                )
            ).scalar_one_or_none()
            if turn is None:
                raise NotFound("workflow", facts.workflow_id)
            return users[(turn - 1) % len(users)]
        count = (
            await self.session.execute(select(Workflow.assignments).where(workflow))
        ).scalar_one_or_none()
        return users[(count or 0) % len(users)]
