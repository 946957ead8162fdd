"""The shapes of workspaces, API keys and users, as clients write and read them."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, EmailStr, Field, StringConstraints

from app.core.schemas import InputModel, Name, ResourceModel, UpdateModel
from app.domain.access.scopes import Scope

Email = Annotated[EmailStr, AfterValidator(str.casefold)]
Role = Annotated[str, StringConstraints(min_length=1, max_length=50)]


class Workspace(ResourceModel):
    id: UUID
    name: str
    version: int
    created_at: datetime
    updated_at: datetime


class WorkspaceUpdate(InputModel):
    name: Name


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
