"""The shapes of workspaces, API keys and users, as clients write and read them."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, EmailStr, Field, StringConstraints

from app.core.schemas import InputModel, Name, ResourceModel, UpdateModel
from app.domain.access.scopes import Scope

Email = Annotated[EmailStr, AfterValidator(str.casefold)]
Role = Annotated[str, StringConstraints(min_length=1, max_length=50)]


LifecycleStage = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,49}$")]


class Workspace(ResourceModel):
    id: UUID
    name: str
    lifecycle_stages: list[str] = Field(
        description="The stages a customer's `lifecycle_stage` may take, in funnel order."
    )
    version: int
    created_at: datetime
    updated_at: datetime


class WorkspaceUpdate(UpdateModel):
    name: Name | None = None
    lifecycle_stages: list[LifecycleStage] | None = Field(default=None, min_length=1, max_length=50)


class ApiKeyCreate(InputModel):
    name: Name
    scopes: list[Scope] = Field(min_length=1)
    expires_at: datetime | None = Field(
        default=None, description="When the key stops working; it never expires when omitted."
    )


class ApiKey(ResourceModel):
    id: UUID
    name: str
    prefix: str = Field(description="The first characters of the key, to recognise it by.")
    scopes: list[str]
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


class ApiKeyCreated(ApiKey):
    secret: str = Field(description="The key itself. Shown only in this response: store it now.")


class UserCreate(InputModel):
    name: Name
    email: Email
    role: Role = Field(examples=["sales", "marketing", "support", "manager"])
    active: bool = True


class UserUpdate(UpdateModel):
    name: Name | None = None
    email: Email | None = None
    role: Role | None = None
    active: bool | None = None


class User(ResourceModel):
    id: UUID
    name: str
    email: str
    role: str
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime
