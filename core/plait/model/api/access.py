"""Users, API keys, projects and roles over the API."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Me(BaseModel):
    """Who a key authenticates, and its role in each project it has one in."""

    user: str
    admin: bool
    roles: dict[str, str]


class UserIn(BaseModel):
    name: str
    admin: bool = False


class UserOut(BaseModel):
    name: str
    admin: bool
    disabled: bool
    created: float


class KeyIn(BaseModel):
    description: str = ""
    expires_in_days: float | None = Field(default=None, gt=0, description="None: the key never expires")


class KeyOut(BaseModel):
    id: str
    user: str
    description: str
    created: float
    expires: float | None
    revoked: float | None
    last_used: float | None


class KeyCreated(KeyOut):
    key: str = Field(description="The key itself: shown this once, stored only as a hash")


class ProjectIn(BaseModel):
    name: str
    description: str = ""
    domains: list[str] = Field(default_factory=lambda: ["development", "staging", "production"])


class ProjectOut(BaseModel):
    name: str
    description: str
    domains: list[str]
    created: float
    role: str | None = Field(default=None, description="The caller's role in it")


class RoleIn(BaseModel):
    role: str = Field(description="viewer, launcher, editor or admin")


class Member(BaseModel):
    user: str
    role: str
