"""Which customers and orders an insight counts: built in one place for every endpoint.

Unrestricted, the population is the workspace: every customer, and every order including those
of erased customers (kept without a customer, as anonymous figures). A restriction (a segment,
once segments exist) narrows it to the customers it names and to their orders only.
"""

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import Select, select
from sqlalchemy.sql.elements import ColumnElement

from app.domain.commerce.entities import Order
from app.domain.customer.entities import Customer


@dataclass(frozen=True, slots=True)
class Population:
    workspace_id: UUID
    # A subquery of customer ids to restrict to (e.g. a segment's members); None: everyone.
    customer_ids: Select[Any] | None = None

    @property
    def restricted(self) -> bool:
        return self.customer_ids is not None

    def customers(self) -> list[ColumnElement[bool]]:
        """Conditions on `Customer` rows."""
        conditions = [Customer.workspace_id == self.workspace_id]
        if self.customer_ids is not None:
            conditions.append(Customer.id.in_(self.customer_ids))
        return conditions

    def orders(self) -> list[ColumnElement[bool]]:
        """Conditions on `Order` rows (any status: callers choose which count)."""
        conditions = [Order.workspace_id == self.workspace_id]
        if self.customer_ids is not None:
            conditions.append(Order.customer_id.in_(self.customer_ids))
        return conditions

    def customer_id_in(self, column: Any) -> list[ColumnElement[bool]]:
        """Conditions on another table's customer reference (interactions)."""
        if self.customer_ids is None:
            return []
        return [column.in_(self.customer_ids)]


def workspace_population(workspace_id: UUID) -> Population:
    return Population(workspace_id)


def members_of(workspace_id: UUID, customer_ids: Select[Any]) -> Population:
    """A population narrowed to `customer_ids` (a select of ids in this workspace)."""
    return Population(workspace_id, select(customer_ids.subquery().c[0]))
